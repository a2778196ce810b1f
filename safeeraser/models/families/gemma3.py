"""Gemma 3 (`gemma3`): SigLIP vision tower, a pooling projector (one image becomes a fixed square number of
soft tokens), Gemma 3 language model with interleaved sliding-window and global attention layers.

Specific to the family, and handled elsewhere by generic code: the chat template writes `<bos>` itself
(the encoder then tokenizes without special tokens, else BOS is doubled); the processor returns
`token_type_ids`, with which image tokens attend to each other both ways (a per-token input, padded and
truncated with the ids); an answer ends with `<end_of_turn>`, which is not the tokenizer's EOS."""
from __future__ import annotations

from safeeraser.models.families.base import Family
from safeeraser.models.tiny import PATCH_SIZE, SIZES, set_generation_tokens, train_tokenizer

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"
START_TURN, END_TURN = "<start_of_turn>", "<end_of_turn>"
# The prompt's image placeholder is the begin-of-image token; the processor replaces it with
# "\n\n<start_of_image>" + soft tokens + "<end_of_image>\n\n".
BOI, EOI, SOFT = "<start_of_image>", "<end_of_image>", "<image_soft_token>"

# The google/gemma-3-*-it conversation format:
#   <bos><start_of_turn>user\n[system\n\n]<start_of_image>{question}<end_of_turn>\n
#   <start_of_turn>model\n{answer}<end_of_turn>\n
# The assistant's role is written "model"; a system message has no turn of its own but opens the first
# user turn; text items are trimmed.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set ns = namespace(prefix='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% set ns.prefix = (message['content'] if message['content'] is string "
    "else message['content'][0]['text']) + '\n\n' %}"
    "{% else %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n{{ ns.prefix }}"
    "{% set ns.prefix = '' %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_turn>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Soft tokens per image: a square (the projector average-pools the patch grid to a side of its root).
TOKENS_PER_IMAGE = 4


class Gemma3(Family):
    model_type = "gemma3"
    # Module paths are the base class's: model.vision_tower, model.multi_modal_projector, model.language_model.
    stop_tokens = (END_TURN,)

    def build_tiny(self, texts, size: str, seed: int):
        import torch
        from transformers import (Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor, Gemma3TextConfig,
                                  SiglipVisionConfig)
        from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

        s = SIZES[size]
        side = s.image_size // PATCH_SIZE
        pool = int(TOKENS_PER_IMAGE ** 0.5)
        if pool * pool != TOKENS_PER_IMAGE or side % pool:
            raise ValueError(f"{side}x{side} patches cannot pool to {TOKENS_PER_IMAGE} image tokens")
        # Gemma's tokenizer adds <bos> itself, like Llama's; the processor reads boi/eoi/image tokens
        # (and their ids) from tokenizer attributes.
        tokenizer = train_tokenizer(texts, s.vocab_size, bos=BOS, eos=EOS, pad=PAD, unk=UNK,
                                    extra={"boi_token": BOI, "eoi_token": EOI, "image_token": SOFT},
                                    other_tokens=(START_TURN, END_TURN), chat_template=CHAT_TEMPLATE,
                                    prepend_bos=True)
        # The real checkpoints normalise to [-1, 1] (mean = std = 0.5) after a bilinear resize, no pan-and-scan.
        image_processor = Gemma3ImageProcessorPil(size={"height": s.image_size, "width": s.image_size},
                                                  image_mean=[0.5] * 3, image_std=[0.5] * 3, do_pan_and_scan=False)
        processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                    image_seq_length=TOKENS_PER_IMAGE, chat_template=CHAT_TEMPLATE)

        # The real vision tower has no pooling head: the projector reads the last hidden state.
        vision = SiglipVisionConfig(hidden_size=s.vision_hidden, intermediate_size=4 * s.vision_hidden,
                                    num_hidden_layers=s.vision_layers, num_attention_heads=s.heads,
                                    image_size=s.image_size, patch_size=PATCH_SIZE, vision_use_head=False)
        head_dim = s.text_hidden // s.heads
        text = Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=s.text_hidden, intermediate_size=4 * s.text_hidden,
            num_hidden_layers=s.text_layers, num_attention_heads=s.heads, num_key_value_heads=max(1, s.heads // 2),
            # head_dim and the attention scale are independent settings whose defaults (256) fit the real sizes
            # only; the 4B and 12B checkpoints scale by 1/sqrt(head_dim).
            head_dim=head_dim, query_pre_attn_scalar=head_dim,
            # The real pattern is five sliding layers then a global one; the default for a few layers would be
            # sliding only. Both kinds here, each with its own rotary base, and a window shorter than a prompt
            # (about 32 tokens), so that the sliding masks cut in training, prefill and cached decoding alike
            # (the real window, 1024, is reached by long answers only).
            layer_types=["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(s.text_layers)],
            sliding_window=16, max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
        config = Gemma3Config(
            vision_config=vision, text_config=text, mm_tokens_per_image=TOKENS_PER_IMAGE,
            boi_token_index=tokenizer.convert_tokens_to_ids(BOI), eoi_token_index=tokenizer.convert_tokens_to_ids(EOI),
            image_token_index=tokenizer.convert_tokens_to_ids(SOFT), tie_word_embeddings=True)
        torch.manual_seed(seed)
        model = Gemma3ForConditionalGeneration(config)
        # transformers initialises the projector's weight to zeros (a real checkpoint loads trained ones):
        # a random model built so would give every image the same (zero) features and never see it
        with torch.no_grad():
            model.model.multi_modal_projector.mm_input_projection_weight.normal_(std=text.initializer_range)
        # The instruction-tuned checkpoints end generation on <eos> or <end_of_turn>.
        set_generation_tokens(model, tokenizer, [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_TURN)])
        return model, processor


FAMILY = Gemma3()
