"""InternVL 2.5 / 3 in the transformers layout (`internvl`): InternViT vision tower, pixel-shuffle
projector, Qwen2 language model. Images are cut into tiles of a fixed size, (tiles, 3, H, W) per image
and concatenated over the batch; `<IMG_CONTEXT>` becomes `<img>`, image tokens per tile, `</img>`."""
from __future__ import annotations

from safeeraser.models.families.base import Family
from safeeraser.models.tiny import PATCH_SIZE, SIZES, set_generation_tokens, train_tokenizer

# The template of the OpenGVLab/InternVL3-*-hf checkpoints (ChatML, no system turn unless given): the
# image placeholder and a newline come before the text, and every turn ends with "<|im_end|>\n".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Pixel shuffle halves each side of the patch grid, so one tile gives (side / patch / 2)^2 tokens.
DOWNSAMPLE_RATIO = 0.5


class InternVL(Family):
    model_type = "internvl"
    # EOS is already <|im_end|>, the end of the assistant's turn: no further stop token.

    def build_tiny(self, texts, size: str, seed: int):
        import torch
        from transformers import (InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor,
                                  InternVLVisionConfig, Qwen2Config)
        from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
        from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

        s = SIZES[size]
        side = s.image_size // PATCH_SIZE
        if side % round(1 / DOWNSAMPLE_RATIO):
            raise ValueError(f"image_size {s.image_size}: the {side}x{side} patch grid does not pixel-shuffle by "
                             f"{DOWNSAMPLE_RATIO}")
        image_seq_length = int((side * DOWNSAMPLE_RATIO) ** 2)

        # Qwen2's layout: no BOS, <|endoftext|> pads, the chat turn's <|im_end|> is EOS (as in the -hf
        # checkpoints); the processor reads the image markers from these tokenizer attributes.
        tokenizer = train_tokenizer(
            texts, s.vocab_size, bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None,
            extra={"start_image_token": "<img>", "end_image_token": "</img>",
                   "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"},
            other_tokens=["<|im_start|>"], chat_template=CHAT_TEMPLATE)
        tile = {"height": s.image_size, "width": s.image_size}
        # The processor's call turns tiling on whatever the image processor says (the real checkpoints
        # make up to 12 tiles plus a thumbnail): max_patches=1 is what keeps every image at one tile,
        # image_seq_length tokens, and the tiny model fast.
        image_processor = GotOcr2ImageProcessorPil(size=tile, crop_to_patches=False, min_patches=1, max_patches=1)
        video_processor = InternVLVideoProcessor(size=tile)
        processor = InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                      video_processor=video_processor, image_seq_length=image_seq_length,
                                      chat_template=CHAT_TEMPLATE)

        vision = InternVLVisionConfig(
            hidden_size=s.vision_hidden, intermediate_size=4 * s.vision_hidden, num_hidden_layers=s.vision_layers,
            num_attention_heads=s.heads, image_size=s.image_size, patch_size=PATCH_SIZE)
        # Qwen2 keeps fewer key/value heads than query heads (grouped-query attention).
        text = Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=int(2.75 * s.text_hidden),
            num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=max(1, s.heads // 2),
            max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
            eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
        config = InternVLConfig(
            vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
            image_seq_length=image_seq_length, downsample_ratio=DOWNSAMPLE_RATIO, vision_feature_layer=-1,
            vision_feature_select_strategy="default", projector_hidden_act="gelu", tie_word_embeddings=False)
        torch.manual_seed(seed)
        model = InternVLForConditionalGeneration(config)
        set_generation_tokens(model, tokenizer, [tokenizer.eos_token_id])
        return model, processor


FAMILY = InternVL()
