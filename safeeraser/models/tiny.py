"""Tiny random models of every supported family, small enough to train on two CPU cores.

Each family's file builds its own (`Family.build_tiny`): the family's model class, its processor class,
a byte-level BPE tokenizer trained here on the mini benchmark's language with the family's special
tokens, and a chat template in the family's documented conversation format. The result is saved with
`save_pretrained`, so every command loads it exactly as it loads the family's real checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from safeeraser.data.mini import corpus
from safeeraser.models.families import DEFAULT_FAMILY, family_for


@dataclass(frozen=True)
class TinySize:
    image_size: int
    vision_hidden: int
    vision_layers: int
    text_hidden: int
    text_layers: int
    heads: int
    vocab_size: int


SIZES = {
    # ~0.8M parameters (the trained tokenizer stops short of vocab_size): trains in a CPU minute.
    "tiny": TinySize(image_size=56, vision_hidden=64, vision_layers=2, text_hidden=128, text_layers=2, heads=4,
                     vocab_size=1024),
    # ~15M parameters: large enough that weights are a real share of memory in benchmarks.
    "small": TinySize(image_size=56, vision_hidden=128, vision_layers=2, text_hidden=512, text_layers=4, heads=8,
                      vocab_size=4096),
}
PATCH_SIZE = 14


# A bench 7B model's language model at the tiny model's sizes, for a CPU dry run of its code (Family.bench_files)
DRY_RUN_TEXT = dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4,
                    max_position_embeddings=2048)
DRY_RUN_IMAGE_SIZE = 56  # the tiny models' images (4x4 patches)


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, bos: str | None, eos: str, pad: str, unk: str | None,
                    extra: dict[str, str], chat_template: str, other_tokens: Iterable[str] = (),
                    prepend_bos: bool = False):
    """A byte-level BPE tokenizer trained locally (no hub), wrapped as a transformers fast tokenizer.
    `extra` names the family's multimodal tokens as tokenizer attributes (image_token, boi_token, ...);
    `other_tokens` are further special tokens of the format (turn markers). With `prepend_bos` the
    tokenizer adds BOS itself, as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    named = [t for t in (pad, bos, eos, unk) if t]
    specials = list(dict.fromkeys([*named, *extra.values(), *other_tokens]))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    if prepend_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        extra_special_tokens=dict(extra), padding_side="right", chat_template=chat_template,
    )


def set_generation_tokens(model, tokenizer, eos_ids: list[int] | None = None) -> None:
    """The generation config a real checkpoint ships: pad, BOS and the end-of-turn ids."""
    gc = model.generation_config
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = tokenizer.bos_token_id
    gc.eos_token_id = eos_ids if eos_ids else tokenizer.eos_token_id


def make_tiny(out: str | Path, family: str | None = None, size: str = "tiny", seed: int = 0) -> Path:
    """Build the tiny model of `family` (the default family when None) with a tokenizer trained on the
    mini benchmark's language, and save it."""
    family = family or DEFAULT_FAMILY
    if size not in SIZES:
        raise ValueError(f"unknown size '{size}'; choose one of {', '.join(SIZES)}")
    model, processor = family_for(family).build_tiny(corpus(), size=size, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
