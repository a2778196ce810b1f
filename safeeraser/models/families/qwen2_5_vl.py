"""Qwen2.5-VL (`qwen2_5_vl`): Qwen2-VL's layout, prompt format, tokens and multimodal rotary positions,
with a vision tower of RMSNorm/SwiGLU blocks that attend within windows except in a few full-attention
blocks. Everything but the configs and classes is Qwen2-VL's."""
from __future__ import annotations

from safeeraser.models.families.qwen2_vl import Qwen2VL, qwen_special_ids, qwen_text_kwargs


class Qwen2_5_VL(Qwen2VL):
    model_type = "qwen2_5_vl"

    def _configs(self, s, tokenizer):
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLTextConfig, Qwen2_5_VLVisionConfig

        from safeeraser.models.tiny import PATCH_SIZE

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
