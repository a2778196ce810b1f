"""Qwen2-VL (`qwen2_vl`): a ViT over 14px patches whose merger (inside the vision tower) joins 2x2
patches into one language token, and a Qwen2 language model with multimodal rotary positions (M-RoPE):
each token has a (temporal, height, width) position, image tokens spread over the image's grid and
text resuming after the grid's largest extent. Images of any size become a flat patch matrix with
their `image_grid_thw`; `<|image_pad|>` expands to one token per merged 2x2 patch group."""
from __future__ import annotations

import torch

from safeeraser.models.families.base import Family
from safeeraser.models.tiny import PATCH_SIZE, SIZES, set_generation_tokens, train_tokenizer

# The Qwen2-VL-Instruct checkpoints' chat template (ChatML) as it renders a user turn with one image then
# text and an assistant turn: the default system message comes first when the conversation has none.
# Qwen2.5-VL-Instruct ships the same template.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The Qwen2 tokenizer's special tokens that the VL formats use (the checkpoints have more, unused here).
PAD, EOS = "<|endoftext|>", "<|im_end|>"
VISION_TOKENS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"


def qwen_tokenizer(texts, vocab_size: int, chat_template: str = CHAT_TEMPLATE):
    """Qwen2's token layout: no BOS, EOS `<|im_end|>`, pad `<|endoftext|>`, the vision markers."""
    return train_tokenizer(texts, vocab_size, bos=None, eos=EOS, pad=PAD, unk=None, extra=VISION_TOKENS,
                           chat_template=chat_template, other_tokens=("<|im_start|>", VISION_START, VISION_END))


def qwen_image_processors(image_size: int):
    """(image processor, video processor) that make `image_size`^2 pixels of every image: the mini
    benchmark's 112px squares become 56px, a 4x4 patch grid, 4 language tokens. The PIL image processor
    when this transformers has one (no torchvision ops on the image path)."""
    from transformers import Qwen2VLVideoProcessor

    try:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil as ImageProc
    except ImportError:
        from transformers import Qwen2VLImageProcessor as ImageProc
    pixels = {"shortest_edge": image_size * image_size, "longest_edge": image_size * image_size}
    return ImageProc(size=dict(pixels)), Qwen2VLVideoProcessor(size=dict(pixels))


def qwen_special_ids(tokenizer) -> dict:
    """The model config's multimodal token ids, from the tokenizer."""
    ids = tokenizer.convert_tokens_to_ids
    return {"image_token_id": ids(VISION_TOKENS["image_token"]), "video_token_id": ids(VISION_TOKENS["video_token"]),
            "vision_start_token_id": ids(VISION_START), "vision_end_token_id": ids(VISION_END)}


def qwen_text_kwargs(s, tokenizer) -> dict:
    """The Qwen2 text config's arguments at a tiny size. M-RoPE splits each head's rotary frequencies
    between the three axes; the checkpoints' [16, 24, 24] of 64 is scaled to the tiny head. Grouped
    key/value heads as the checkpoints have them."""
    half = s.text_hidden // s.heads // 2
    section = [half // 4, (half - half // 4) // 2]
    section.append(half - sum(section))
    return dict(vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=int(2.75 * s.text_hidden),
                num_hidden_layers=s.text_layers, num_attention_heads=s.heads,
                num_key_value_heads=max(1, s.heads // 2), max_position_embeddings=1024,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": section},
                pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=tokenizer.eos_token_id)


def _inner(model):
    """The Qwen2VLModel (`model.model`) of a loaded model, also behind a PEFT wrapper (whose attribute
    lookups would otherwise stop one level too high)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model


class Qwen2VL(Family):
    model_type = "qwen2_vl"
    vision = "model.visual"
    projector = "model.visual.merger"  # inside the vision tower: a tuned tower already includes it
    language = "model.language_model"
    token_positions = False  # M-RoPE: positions along time, height and width, computed from the image grid
    # <|im_end|> is the tokenizer's EOS; the checkpoints' other end id (<|endoftext|>) comes from the
    # generation config, which the engine reads.
    stop_tokens = ()

    def prefill_positions(self, model, inputs: dict):
        """M-RoPE positions (3, rows, width) of a left-padded prompt batch from the model's own
        `get_rope_index` (which reads the real tokens only), and each row's next position: text after
        the prompt continues from its largest position, i.e. real length + the row's rope delta, as
        `generate` continues it (so a row's answer does not depend on its padding)."""
        positions, deltas = _inner(model).get_rope_index(**inputs)
        return positions, inputs["attention_mask"].sum(-1, keepdim=True) + deltas.to(positions.device)

    def step_positions(self, positions: torch.Tensor) -> torch.Tensor:
        # (rows, 1): the text model gives every axis the same position for a text token.
        return positions

    def _configs(self, s, tokenizer):
        from transformers import Qwen2VLConfig, Qwen2VLTextConfig, Qwen2VLVisionConfig

        vision = Qwen2VLVisionConfig(depth=s.vision_layers, embed_dim=s.vision_hidden, hidden_size=s.text_hidden,
                                     num_heads=s.heads, mlp_ratio=4, patch_size=PATCH_SIZE, spatial_merge_size=2,
                                     temporal_patch_size=2)
        text = Qwen2VLTextConfig(**qwen_text_kwargs(s, tokenizer))
        return Qwen2VLConfig(vision_config=vision, text_config=text, **qwen_special_ids(tokenizer))

    def _classes(self):
        from transformers import Qwen2VLForConditionalGeneration, Qwen2VLProcessor

        return Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    def build_tiny(self, texts, size: str, seed: int):
        s = SIZES[size]
        model_cls, processor_cls = self._classes()
        tokenizer = qwen_tokenizer(texts, s.vocab_size)
        image_processor, video_processor = qwen_image_processors(s.image_size)
        processor = processor_cls(image_processor=image_processor, tokenizer=tokenizer,
                                  video_processor=video_processor, chat_template=CHAT_TEMPLATE)
        config = self._configs(s, tokenizer)
        torch.manual_seed(seed)
        model = model_cls(config)
        set_generation_tokens(model, tokenizer, [tokenizer.convert_tokens_to_ids(EOS),
                                                 tokenizer.convert_tokens_to_ids(PAD)])
        return model, processor


FAMILY = Qwen2VL()
