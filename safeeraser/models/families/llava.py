"""LLaVA-1.5 (`llava`): CLIP vision tower, two-layer projector, Llama/Vicuna language model.
One (3, H, W) image of a fixed size per prompt; `<image>` expands to one token per patch."""
from __future__ import annotations

from safeeraser.models.families.base import Family
from safeeraser.models.tiny import (DRY_RUN_IMAGE_SIZE, DRY_RUN_TEXT, PATCH_SIZE, SIZES, set_generation_tokens,
                                    train_tokenizer)

# The llava-hf LLaVA-1.5 prompt format: "USER: <image>\n{question} ASSISTANT: {answer}</s>".
CHAT_TEMPLATE = (
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


def llama_tokenizer(texts, vocab_size: int, chat_template: str):
    """Llama's token layout: <s> prepended by the tokenizer, </s>, <unk>, and <image> (llava-hf adds <pad>)."""
    return train_tokenizer(texts, vocab_size, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>",
                           extra={"image_token": "<image>"}, chat_template=chat_template, prepend_bos=True)


def clip_vision_config(s, image_size: int | None = None):
    from transformers import CLIPVisionConfig

    size = image_size or s.image_size
    return CLIPVisionConfig(hidden_size=s.vision_hidden, intermediate_size=4 * s.vision_hidden,
                            num_hidden_layers=s.vision_layers, num_attention_heads=s.heads, image_size=size,
                            patch_size=PATCH_SIZE, projection_dim=s.vision_hidden)


def llama_text_config(s, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=int(2.75 * s.text_hidden),
                       num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=s.heads,
                       max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       tie_word_embeddings=False)


IMAGE_SIZE_7B = 336  # CLIP ViT-L/14-336: (336 / 14)^2 = 576 image tokens


class Llava(Family):
    model_type = "llava"
    reference_names = ("llava-v1.5-vicuna",)  # the reference's configs' model_family
    # transformers < 5 named LLaVA's modules differently; the reference's checkpoint.pt uses those names.
    legacy_keys = ((r"^language_model\.model\.", "model.language_model."), (r"^language_model\.lm_head\.", "lm_head."),
                   (r"^vision_tower\.", "model.vision_tower."),
                   (r"^multi_modal_projector\.", "model.multi_modal_projector."))

    bench_architecture = "LlavaForConditionalGeneration"

    def bench_files(self, tiny_processor, dry_run: bool):
        tok = tiny_processor.tokenizer
        processor = bench_processor(tiny_processor, DRY_RUN_IMAGE_SIZE if dry_run else IMAGE_SIZE_7B)
        if not dry_run:
            return processor, bench_config(tok)
        vision = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      image_size=DRY_RUN_IMAGE_SIZE, projection_dim=64)
        return processor, bench_config(tok, vision, vocab_size=len(tok), num_key_value_heads=4, **DRY_RUN_TEXT)

    def build_tiny(self, texts, size: str, seed: int):
        import torch
        from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        s = SIZES[size]
        tokenizer = llama_tokenizer(texts, s.vocab_size, CHAT_TEMPLATE)
        image_processor = CLIPImageProcessorPil(
            size={"shortest_edge": s.image_size}, crop_size={"height": s.image_size, "width": s.image_size})
        processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=CHAT_TEMPLATE)
        config = LlavaConfig(
            vision_config=clip_vision_config(s), text_config=llama_text_config(s, tokenizer),
            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
            vision_feature_select_strategy="default", projector_hidden_act="gelu", pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
        set_generation_tokens(model, tokenizer)
        return model, processor


def bench_processor(tiny_processor, image_size: int = IMAGE_SIZE_7B):
    """The tiny tokenizer behind a CLIP image processor of `image_size` px (336: 576 image tokens, as
    LLaVA-1.5)."""
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    return LlavaProcessor(image_processor=image_processor, tokenizer=tiny_processor.tokenizer,
                          patch_size=PATCH_SIZE, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)


def bench_config(tokenizer, vision_overrides: dict | None = None, **text_overrides):
    """LLaVA-1.5-7B's architecture (CLIP ViT-L/14-336, two-layer GELU projector, Llama-2-7B, vocabulary
    32064). The overrides shrink it (tests, the dry run)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision_kwargs = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                         image_size=IMAGE_SIZE_7B, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5)
    vision_kwargs.update(vision_overrides or {})
    text_kwargs = dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    text_kwargs.update(text_overrides)
    return LlavaConfig(vision_config=CLIPVisionConfig(**vision_kwargs), text_config=LlamaConfig(**text_kwargs),
                       image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu",
                       pad_token_id=tokenizer.pad_token_id)


FAMILY = Llava()
