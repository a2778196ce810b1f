"""Build a LLaVA-1.5-architecture model small enough to train on two CPU cores.

The result is saved with `save_pretrained`, so every command loads it exactly as it loads
`llava-hf/llava-1.5-7b-hf`: LlavaForConditionalGeneration (CLIP vision tower, two-layer GELU
projector, Llama language model) and a LlavaProcessor (CLIP image processor, byte-level BPE
tokenizer with `<image>` and `<pad>`, the llava-hf chat template).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

# The llava-hf LLaVA-1.5 prompt format: "USER: <image>\n{question} ASSISTANT: {answer}</s>".
LLAVA15_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'][0]['text'] if message['content'] is not string "
    "else message['content'] }}{{ ' ' }}"
    "{% elif message['role'] == 'user' %}USER: "
    "{% for item in message['content'] if item['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %} "
    "{% else %}ASSISTANT: {% for item in message['content'] if item['type'] == 'text' %}"
    "{{ item['text'] }}{% endfor %}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


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
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained locally (no hub), wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    # BOS is prepended by the tokenizer itself, as Llama's does, so prompts match llava-hf's.
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"}, padding_side="right",
        chat_template=LLAVA15_CHAT_TEMPLATE,
    )


def build_tiny(texts: Iterable[str], size: str = "tiny", seed: int = 0):
    """Return (model, processor) for a fresh randomly initialised tiny LLaVA."""
    import torch
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    if size not in SIZES:
        raise ValueError(f"unknown size '{size}'; choose one of {', '.join(SIZES)}")
    s = SIZES[size]
    tokenizer = train_tokenizer(texts, s.vocab_size)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": s.image_size}, crop_size={"height": s.image_size, "width": s.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA15_CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=s.vision_hidden, intermediate_size=4 * s.vision_hidden, num_hidden_layers=s.vision_layers,
        num_attention_heads=s.heads, image_size=s.image_size, patch_size=PATCH_SIZE, projection_dim=s.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=int(2.75 * s.text_hidden),
        num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=s.heads,
        max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model, processor


def make_tiny(out: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Build the tiny model with a tokenizer trained on the mini benchmark's language and save it."""
    from safeeraser.data.mini import corpus

    model, processor = build_tiny(corpus(), size=size, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
