"""Turn (image, question[, answer]) into model inputs through the model's own processor.

Training and inference build prompts here, through the processor's chat template, so the two
can never drift apart (the reference formats them differently). Each image is preprocessed once
and cached: records repeat their image across pairs and epochs.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: torch.Tensor  # (T,) long
    labels: torch.Tensor  # (T,) long, IGNORE_INDEX on prompt tokens
    pixel_values: torch.Tensor  # (3, H, W)


class ImageLoadError(RuntimeError):
    pass


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, or its EOS id when it has none (padding is masked out either way)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


class _LRU(OrderedDict):
    """A mapping that keeps its `size` most recently used entries."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def put(self, key, value) -> None:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


class PromptEncoder:
    def __init__(self, processor, max_length: int | None = None, image_cache_size: int = 4096):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.max_length = max_length
        self._cache = _LRU(image_cache_size)  # image path -> (pixel_values, image tokens)
        # Token ids and labels of training examples by (image, question, answer): every epoch encodes the
        # same examples again (chat template, two tokenisations, the prompt/answer boundary), about 1 ms
        # each on a CPU. Pixels are not kept here: they stay bounded by the image cache.
        self._encoded = _LRU(16 * image_cache_size)  # (image, question, answer) -> (input_ids, labels)
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: the model could not learn to stop")

    def prompt_text(self, question: str) -> str:
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True)

    def image(self, path: str | Path) -> tuple[torch.Tensor, int]:
        """(pixel_values (3,H,W), number of image tokens) for an image file, cached by path."""
        key = str(path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        from PIL import Image

        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except Exception as exc:
            raise ImageLoadError(f"cannot read image '{path}': {type(exc).__name__}: {exc}") from None
        # The processor expands one image token into as many as the vision tower produces: asking it
        # once per image keeps that rule the processor's, whatever the model.
        out = self.processor(images=[img], text=[self.image_token], return_tensors="pt")
        n_tokens = int((out["input_ids"][0] == self.processor.image_token_id).sum())
        value = (out["pixel_values"][0], n_tokens)
        self._cache.put(key, value)
        return value

    def _expand(self, text: str, n_tokens: int) -> str:
        return text.replace(self.image_token, self.image_token * n_tokens, 1)

    def encode_prompt(self, image_path, question: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference inputs: (input_ids (T,), pixel_values (3,H,W))."""
        pixels, n_tokens = self.image(image_path)
        text = self._expand(self.prompt_text(question), n_tokens)
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"][0]
        return ids, pixels

    def encode(self, image_path, question: str, answer: str) -> Encoded:
        """Training inputs: prompt + answer + EOS, with the loss on the answer and EOS only. The returned
        tensors are shared with the cache: callers must not modify them in place (pad_batch copies)."""
        key = (str(image_path), question, answer)
        hit = self._encoded.get(key)
        if hit is not None:
            return Encoded(hit[0], hit[1], self.image(image_path)[0])
        value = self._encode(image_path, question, answer)
        self._encoded.put(key, (value.input_ids, value.labels))
        return value

    def _encode(self, image_path, question: str, answer: str) -> Encoded:
        pixels, n_tokens = self.image(image_path)
        prompt = self._expand(self.prompt_text(question), n_tokens)
        prompt_ids = self.tokenizer(prompt)["input_ids"]
        full_ids = self.tokenizer(prompt + " " + answer.strip())["input_ids"]
        # The boundary is where the two tokenisations agree; merges across it are rare but possible.
        cut = 0
        for a, b in zip(prompt_ids, full_ids):
            if a != b:
                break
            cut += 1
        ids = list(full_ids) + [self.tokenizer.eos_token_id]
        labels = [IGNORE_INDEX] * cut + ids[cut:]
        if self.max_length and len(ids) > self.max_length:
            # Truncate the answer, never the image tokens: they must match the vision features.
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        return Encoded(torch.tensor(ids), torch.tensor(labels), pixels)


def pad_batch(items: list[Encoded], pad_id: int, side: str = "right") -> dict:
    """Stack encoded examples into a batch. Right padding for training, left for generation."""
    width = max(len(e.input_ids) for e in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, e in enumerate(items):
        n = len(e.input_ids)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        input_ids[i, sl] = e.input_ids
        labels[i, sl] = e.labels
        mask[i, sl] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels,
            "pixel_values": torch.stack([e.pixel_values for e in items])}
