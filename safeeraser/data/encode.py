"""Turn (image, question[, answer]) into model inputs through the model's own processor.

Training and inference build prompts here, through the processor's chat template and the processor's
own call (which expands the image placeholder into the image's tokens, however many the family makes),
so the two can never drift apart and no family's rule is re-implemented. An example's token ids are
made once and cached; its image inputs are cached by image path: records repeat their image across
pairs and epochs. A processor call runs its image through the image processor even when only the
text's token ids are new (a retain example drawn for the first time): the image processor's output is
cached by path too, and handed to the processor's own call in place of running it again.
"""
from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safeeraser.io import DataError

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: torch.Tensor  # (T,) long
    labels: torch.Tensor  # (T,) long, IGNORE_INDEX on prompt tokens
    images: dict  # the processor's image inputs for the example's one image (pixel_values, image_grid_thw, ...)
    tokens: dict = field(default_factory=dict)  # per-token inputs beside input_ids, (T,) each (token_type_ids, ...)


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


class _CachedImageProcessor:
    """Stands in for a processor's image processor during one call of the processor: the first call
    for `key` runs the real one, later calls with the same arguments get its output again. Anything
    else (attributes, other methods) is the real image processor's."""

    def __init__(self, inner, cache: _LRU, key: str):
        self._inner, self._cache, self._key = inner, cache, key

    def __call__(self, images, *args, **kwargs):
        key = (self._key, repr(args), repr(sorted(kwargs.items())))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._inner(images, *args, **kwargs)
            self._cache.put(key, hit)
        # a shallow copy: some processors pop keys from what their image processor returns
        return copy.copy(hit)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class PromptEncoder:
    def __init__(self, processor, family, max_length: int | None = None, image_cache_size: int = 4096,
                 end_token: bool = True, reference_tags=None, inference_tags=None):
        # end_token: the answer's end (the template's stop token or an appended EOS) is trained.
        # reference_tags (safeeraser.reference.checkout.TrainingTags): training conversations are written
        # as the reference writes them (its tags, its label rule) instead of by the chat template;
        # inference_tags (InferenceTags): prompts as the reference's ckpt_infer writes them.
        self.end_token, self.reference_tags, self.inference_tags = end_token, reference_tags, inference_tags
        self.processor = processor
        self.family = family
        self.tokenizer = processor.tokenizer
        self.image_token = processor.image_token
        self.max_length = max_length
        self._images = _LRU(image_cache_size)  # image path -> (image inputs, number of image tokens)
        # Token ids by (image, question[, answer]): every epoch encodes the same examples again (chat
        # template, processor calls, the prompt/answer boundary). Pixels stay bounded by the image cache.
        self._encoded = _LRU(16 * image_cache_size)
        # The image processor's outputs by image path: the tensors the image cache holds, not a copy
        self._processed = _LRU(image_cache_size)
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: the model could not learn to stop")
        # What ends an answer: EOS and the family's end-of-turn tokens.
        self.stop_ids = {self.tokenizer.eos_token_id}
        for token in family.stop_tokens:
            self.stop_ids.add(self.tokenizer.convert_tokens_to_ids(token))

    def _conversation(self, question: str, answer: str | None = None, add_generation_prompt: bool = True) -> str:
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        if answer is not None:
            conversation.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return self.processor.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt)

    def prompt_text(self, question: str) -> str:
        if self.inference_tags is not None:
            return self.inference_tags.prompt(self.image_token, question)
        return self._conversation(question)

    def _load(self, path):
        from PIL import Image

        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except Exception as exc:
            raise ImageLoadError(f"cannot read image '{path}': {type(exc).__name__}: {exc}") from None

    @contextlib.contextmanager
    def _image_processing_of(self, path):
        """While open, the processor's image processor answers for the image at `path` from a cache."""
        inner = getattr(self.processor, "image_processor", None)
        if inner is None:
            yield
            return
        self.processor.image_processor = _CachedImageProcessor(inner, self._processed, str(path))
        try:
            yield
        finally:
            self.processor.image_processor = inner

    def _process(self, text: str, path, add_special_tokens: bool | None = None,
                 img=None) -> tuple[list[int], dict, dict]:
        """The processor's own call on `text` and the image at `path` (`img`, when already read): (token
        ids, per-token inputs, image inputs). A template that writes BOS itself must not get a second one
        from the tokenizer."""
        if add_special_tokens is None:
            bos = self.tokenizer.bos_token
            add_special_tokens = not (bos and text.startswith(bos))
        # The image is read even when its processed inputs are cached: the processor checks what it is given
        with self._image_processing_of(path):
            out = self.processor(text=[text], images=[self._load(path) if img is None else img],
                                 return_tensors="pt", add_special_tokens=add_special_tokens)
        ids = out.pop("input_ids")
        out.pop("attention_mask", None)
        # Inputs with one value per token (token_type_ids, mm_token_type_ids) follow the ids through
        # truncation and padding; the rest are the image's.
        tokens = {k: v[0] for k, v in out.items() if tuple(v.shape) == tuple(ids.shape)}
        images = {k: v for k, v in out.items() if k not in tokens}
        return ids[0].tolist(), tokens, images

    def image(self, path: str | Path) -> tuple[dict, int]:
        """(the processor's image inputs, number of tokens the image becomes) for an image file, cached."""
        key = str(path)
        hit = self._images.get(key)
        if hit is None:
            # The placeholder alone, expanded by the processor: its length is the image's token count.
            ids, _, images = self._process(self.image_token, path, add_special_tokens=False)
            hit = (images, len(ids))
            self._images.put(key, hit)
        return hit

    def encode_prompt(self, image_path, question: str) -> Encoded:
        """Inference inputs: the prompt up to the assistant's turn (labels all IGNORE_INDEX)."""
        images = self.image(image_path)[0]  # first: an unreadable image fails here, before the processor
        key = (str(image_path), question)
        hit = self._encoded.get(key)
        if hit is None:
            ids, tokens, _ = self._process(self.prompt_text(question), image_path)
            hit = (torch.tensor(ids), {k: v.clone() for k, v in tokens.items()})
            self._encoded.put(key, hit)
        ids, tokens = hit
        return Encoded(ids, torch.full_like(ids, IGNORE_INDEX), images, tokens)

    def encode(self, image_path, question: str, answer: str) -> Encoded:
        """Training inputs: the conversation with the answer as the assistant's turn, the loss on the answer
        and the token that ends it. The returned tensors are shared with the cache: callers must not
        modify them in place (pad_batch copies)."""
        key = (str(image_path), question, answer)
        hit = self._encoded.get(key)
        if hit is None:
            hit = self._encode(image_path, question, answer)
            self._encoded.put(key, hit)
        ids, labels, tokens = hit
        return Encoded(ids, labels, self.image(image_path)[0], tokens)

    def _encode(self, image_path, question: str, answer: str):
        if self.reference_tags is not None:
            return self._encode_reference(image_path, question, answer)
        prompt = self.prompt_text(question)
        # Trailing whitespace after the end of the turn (a newline) is nothing the model must predict.
        full = self._conversation(question, answer.strip(), add_generation_prompt=False).rstrip()
        if not full.startswith(prompt):
            raise ValueError("the chat template does not continue the generation prompt with the answer: "
                             f"prompt {prompt[-40:]!r}, conversation {full[:len(prompt) + 20][-60:]!r}")
        img = self._load(image_path)
        prompt_ids = self._process(prompt, image_path, img=img)[0]
        ids, tokens, _ = self._process(full, image_path, img=img)
        # The boundary is where the two tokenisations agree; merges across it are rare but possible.
        cut = 0
        for a, b in zip(prompt_ids, ids):
            if a != b:
                break
            cut += 1
        stop = next((i for i in range(cut, len(ids)) if ids[i] in self.stop_ids), None)
        if not self.end_token:  # the answer's own tokens only
            end = len(ids) if stop is None else stop
        elif stop is None:  # the template ends the turn with nothing: the answer ends with EOS
            ids = ids + [self.tokenizer.eos_token_id]
            tokens = {k: torch.cat([v, v.new_zeros(1)]) for k, v in tokens.items()}
            end = len(ids)
        else:
            end = stop + 1
        if self.max_length:
            # Truncate the answer, never the prompt: its image tokens must match the vision features.
            if cut >= self.max_length:
                raise DataError(f"max_length={self.max_length} is shorter than the prompt of '{image_path}' "
                                 f"({cut} tokens with the image's): raise max_length")
            end = min(end, self.max_length)
        labels = [IGNORE_INDEX] * cut + ids[cut:end]
        return torch.tensor(ids[:end]), torch.tensor(labels[:end]), {k: v[:end].clone() for k, v in tokens.items()}


    def _encode_reference(self, image_path, question: str, answer: str):
        """The reference's training example: its conversation string (system tag, question tag, the image
        placeholder and a newline, the question, the answer tag, the answer: nothing stripped, no end token)
        through the processor, and its label rule: BOS and then `len(tokens(instruction + answer tag)) - 2`
        text tokens are masked, the instruction being the text before the answer tag with blanks stripped
        (the - 2 takes off BOS and the tag's trailing blank, which a Llama tokenizer makes a token of its
        own). The mask is counted in text tokens and moved past the expanded image, as the reference's model
        expands its one image token inside the forward. The text is cut at 512 text tokens (max_length, when
        set, instead), the reference's truncation before expansion. With end_token (not the reference's) EOS
        follows the answer and is trained."""
        tags = self.reference_tags
        text = tags.system + tags.user + self.image_token + "\n" + question + tags.answer + answer
        ids, tokens, _ = self._process(text, image_path, add_special_tokens=True)
        if self.end_token:  # ours in the reference's format: the answer ends with EOS (train_end_token)
            ids = ids + [self.tokenizer.eos_token_id]
            tokens = {k: torch.cat([v, v.new_zeros(1)]) for k, v in tokens.items()}
        image_extra = self.image(image_path)[1] - 1
        instruction = text.split(tags.answer)[0].strip(" ")
        masked = 1 + len(self.tokenizer(instruction + tags.answer)["input_ids"]) - 2 + image_extra
        limit = (self.max_length or 512) + image_extra
        labels = [IGNORE_INDEX] * min(masked, len(ids)) + ids[masked:]
        end = min(len(ids), limit)
        return torch.tensor(ids[:end]), torch.tensor(labels[:end]), {k: v[:end].clone() for k, v in tokens.items()}


def pad_batch(items: list[Encoded], pad_id: int, family, side: str = "right") -> dict:
    """Stack encoded examples into a batch. Right padding for training, left for generation.
    Per-token inputs are padded with 0 like the mask; image inputs are batched by the family."""
    width = max(len(e.input_ids) for e in items)
    rows = len(items)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    labels = torch.full((rows, width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    tokens = {k: torch.zeros((rows, width), dtype=v.dtype) for k, v in items[0].tokens.items()}
    for i, e in enumerate(items):
        n = len(e.input_ids)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        input_ids[i, sl] = e.input_ids
        labels[i, sl] = e.labels
        mask[i, sl] = 1
        for k, v in e.tokens.items():
            tokens[k][i, sl] = v
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "tokens": tokens,
            "images": family.collate_images([e.images for e in items])}


def model_inputs(batch: dict) -> dict:
    """The keyword arguments of a model's forward for a batch made by pad_batch."""
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], **batch["tokens"],
            **batch["images"]}


def batch_to(batch: dict, device) -> dict:
    """The batch on a device (its nested token and image inputs too)."""
    return {k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device))
            for k, v in batch.items()}
