"""LLaVA-NeXT / LLaVA-1.6 (`llava_next`): CLIP vision tower, two-layer projector, Mistral (or Llama)
language model. "anyres": an image becomes a base tile plus a grid of tiles at the best of the
`image_grid_pinpoints` resolutions, so pixel_values is (images, tiles, 3, H, W) with `image_sizes`, and
the number of `<image>` tokens depends on the image's size. Padded tiles of a batch are dropped by the
model from `image_sizes`, so the base class's zero-padding collation holds."""
from __future__ import annotations

from safeeraser.models.families.base import Family
from safeeraser.models.families.llava import Llava
from safeeraser.models.tiny import PATCH_SIZE, SIZES, set_generation_tokens, train_tokenizer

LLAVA_LEGACY_KEYS = Llava.legacy_keys

# llava-hf/llava-v1.6-mistral-7b-hf's format: "[INST] <image>\n{question} [/INST] {answer}</s>", BOS added by
# the tokenizer. The checkpoint's own template writes a literal "<\s>" after the answer (a typo that never
# becomes EOS); here the answer ends with the real EOS, as Mistral-Instruct was trained. The generation
# prompt is the user turn itself: the assistant's turn adds only " {answer}</s>".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<<SYS>>\n{{ message['content'][0]['text'] if message['content'] is not "
    "string else message['content'] }}\n<</SYS>>\n\n"
    "{% elif message['role'] == 'user' %}[INST] "
    "{% for item in message['content'] if item['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %} [/INST]"
    "{% else %}{% for item in message['content'] if item['type'] == 'text' %} {{ item['text'] }}{% endfor %}"
    "{{ eos_token }}"
    "{% endif %}{% endfor %}"
)

# The real pinpoints ([[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] for 336px tiles) scaled
# to 56px tiles. The mini benchmark's 112px images pick the 2x2 grid: 4 tiles + the base tile, 88 tokens.
TILE = 56
GRID_PINPOINTS = [[TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE], [3 * TILE, TILE], [TILE, 3 * TILE]]


def mistral_tokenizer(texts, vocab_size: int, chat_template: str):
    """Mistral's token layout: <unk> 0, <s> 1, </s> 2, BOS prepended by the tokenizer. The checkpoints have
    no pad token of their own and pad with <unk>; [INST] and [/INST] are plain text there, not special."""
    # The template's markers are learned as text, so they are short token runs as in the real vocabulary.
    texts = ["[INST] <image>\n [/INST]", "<<SYS>>\n\n<</SYS>>\n\n", *texts]
    return train_tokenizer(texts, vocab_size, bos="<s>", eos="</s>", pad="<unk>", unk="<unk>",
                           extra={"image_token": "<image>"}, chat_template=chat_template, prepend_bos=True)


def mistral_text_config(s, tokenizer):
    from transformers import MistralConfig

    # Mistral-7B-Instruct-v0.2 (under llava-v1.6-mistral) attends over the whole context: no sliding window.
    return MistralConfig(vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=int(2.75 * s.text_hidden),
                         num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=s.heads,
                         max_position_embeddings=1024, sliding_window=None, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)


class LlavaNext(Family):
    model_type = "llava_next"
    # transformers < 5 kept the language model, tower, projector and image_newline at the top level.
    legacy_keys = LLAVA_LEGACY_KEYS + ((r"^image_newline$", "model.image_newline"),)
    # `model.image_newline` (the row separator of the tiled features) counts as the language model, as in
    # LLaVA-NeXT's own training code, which tunes it with the language model and not with the projector.

    def build_tiny(self, texts, size: str, seed: int):
        import torch
        from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
        from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

        from safeeraser.models.families.llava import clip_vision_config

        s = SIZES[size]
        tokenizer = mistral_tokenizer(texts, s.vocab_size, CHAT_TEMPLATE)
        image_processor = LlavaNextImageProcessorPil(
            size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE},
            image_grid_pinpoints=GRID_PINPOINTS, do_pad=True)
        processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                                       vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                       chat_template=CHAT_TEMPLATE)
        config = LlavaNextConfig(
            vision_config=clip_vision_config(s, image_size=TILE), text_config=mistral_text_config(s, tokenizer),
            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
            vision_feature_select_strategy="default", projector_hidden_act="gelu",
            image_grid_pinpoints=GRID_PINPOINTS, image_seq_length=(TILE // PATCH_SIZE) ** 2,
            pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(seed)
        model = LlavaNextForConditionalGeneration(config)
        # Answers end with </s> only: the format has no separate end-of-turn token.
        set_generation_tokens(model, tokenizer)
        return model, processor


FAMILY = LlavaNext()
