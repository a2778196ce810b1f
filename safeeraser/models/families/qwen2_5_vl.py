"""Qwen2.5-VL (`qwen2_5_vl`): Qwen2-VL's layout, prompt format, tokens and multimodal rotary positions,
with a vision tower of RMSNorm/SwiGLU blocks that attend within windows except in a few full-attention
blocks. Everything but the configs and classes is Qwen2-VL's."""
from __future__ import annotations

from safeeraser.models.families.qwen2_vl import Qwen2VL, qwen_special_ids, qwen_text_kwargs
from safeeraser.models.tiny import DRY_RUN_IMAGE_SIZE, DRY_RUN_TEXT, PATCH_SIZE


IMAGE_SIZE_7B = 672  # (672 / 14)^2 = 2304 patches, merged 2x2: 576 language tokens, as many as LLaVA-1.5's


def bench_config(tokenizer, vision_overrides: dict | None = None, **text_overrides):
    """Qwen2.5-VL-7B-Instruct's architecture (its published config.json). The overrides shrink it."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig

    vision_kwargs = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                         patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2,
                         window_size=112, fullatt_block_indexes=[7, 15, 23, 31], hidden_act="silu")
    vision_kwargs.update(vision_overrides or {})
    text_kwargs = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                       rms_norm_eps=1e-6, tie_word_embeddings=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=tokenizer.eos_token_id)
    text_kwargs.update(text_overrides)
    return Qwen2_5_VLConfig(vision_config=Qwen2_5_VLVisionConfig(**vision_kwargs),
                            text_config=Qwen2_5_VLTextConfig(**text_kwargs), tie_word_embeddings=False,
                            **qwen_special_ids(tokenizer))


class Qwen2_5_VL(Qwen2VL):
    model_type = "qwen2_5_vl"
    bench_architecture = "Qwen2_5_VLForConditionalGeneration"

    def bench_files(self, tiny_processor, dry_run: bool):
        from safeeraser.models.families.qwen2_vl import CHAT_TEMPLATE, qwen_image_processors

        tok = tiny_processor.tokenizer
        image_processor, video_processor = qwen_image_processors(DRY_RUN_IMAGE_SIZE if dry_run else IMAGE_SIZE_7B)
        processor = type(tiny_processor)(image_processor=image_processor, tokenizer=tok,
                                         video_processor=video_processor, chat_template=CHAT_TEMPLATE)
        if not dry_run:
            return processor, bench_config(tok)
        vision = dict(depth=2, hidden_size=64, intermediate_size=256, num_heads=4, out_hidden_size=128,
                      window_size=DRY_RUN_IMAGE_SIZE // 2, fullatt_block_indexes=[1])
        # M-RoPE's (temporal, height, width) split of the tiny head's 16 rotary frequencies
        rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]}
        return processor, bench_config(tok, vision, vocab_size=len(tok), num_key_value_heads=2,
                                       rope_parameters=rope, **DRY_RUN_TEXT)

    def _configs(self, s, tokenizer):
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig

        # The checkpoints' window (112px) would hold a whole tiny image; half the tiny image keeps the
        # windowed blocks windowed. The last block attends fully, as every eighth does in the checkpoints.
        vision = Qwen2_5_VLVisionConfig(depth=s.vision_layers, hidden_size=s.vision_hidden,
                                        intermediate_size=4 * s.vision_hidden, num_heads=s.heads,
                                        out_hidden_size=s.text_hidden, patch_size=PATCH_SIZE, spatial_merge_size=2,
                                        temporal_patch_size=2, tokens_per_second=2, window_size=s.image_size // 2,
                                        fullatt_block_indexes=[s.vision_layers - 1])
        text = Qwen2_5_VLTextConfig(**qwen_text_kwargs(s, tokenizer))
        return Qwen2_5_VLConfig(vision_config=vision, text_config=text, **qwen_special_ids(tokenizer))

    def _classes(self):
        from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

        return Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor


FAMILY = Qwen2_5_VL()
