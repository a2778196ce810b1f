"""Batched generation with left padding, requests sorted by length, one decoding loop per batch.

One loop serves greedy and sampled answers: each request's image and prompt go through the model once,
the key/value cache has its room reserved up front, and tokens are chosen on the model's device.
Sampling uses random numbers seeded per answer, so the same seed gives the same answers whatever the
batch size; greedy output is identical for any batch size up to floating-point ties.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from safeeraser.data.encode import PromptEncoder, batch_to, model_inputs, pad_batch, pad_token_id
from safeeraser.models.families import family_of_model


@dataclass
class GenRequest:
    image: Path | str
    question: str
    num_return_sequences: int = 1
    key: int | None = None  # seeds this request's sampling; stable across batching, chunking and resume


@dataclass
class GenSettings:
    max_new_tokens: int = 512
    greedy: bool = False
    temperature: float = 1.0
    top_p: float = 0.9
    seed: int = 0


@dataclass
class GenStats:
    responses: int = 0
    new_tokens: int = 0
    seconds: float = 0.0


def max_positions(config) -> int | None:
    """The positions the language model was built for (text_config's for a vision-language config), or
    None when the config does not say."""
    for c in (getattr(config, "text_config", None), config):
        n = getattr(c, "max_position_embeddings", None)
        if n:
            return int(n)
    return None


def sample_seed(seed: int, key: int, j: int) -> int:
    """The RNG seed of a request's j-th sampled answer: fixed by the run's seed and the request's key,
    so it does not depend on batching, chunking or resuming."""
    return seed * 1_000_003 + key * 31 + j


def _sorted_descending(probs: torch.Tensor) -> torch.Tensor:
    """Values sorted high to low along the last dim. On a CPU numpy's value-only sort is several times
    faster than torch.sort, which also builds indices the nucleus does not need."""
    if probs.device.type == "cpu":
        import numpy as np

        return torch.from_numpy(-np.sort(-probs.numpy(), axis=-1))
    return probs.sort(-1, descending=True).values


def nucleus_sample(logits: torch.Tensor, temperature: float, top_p: float, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row from the top-p nucleus of softmax(logits / temperature), drawn by inverse CDF
    with the given uniforms in [0, 1): the smallest set of most probable tokens whose mass reaches top_p
    (ties at its edge included), renormalised."""
    probs = torch.softmax(logits.float() / max(temperature, 1e-5), -1)
    desc = _sorted_descending(probs)
    n_keep = ((desc.cumsum(-1) - desc) < top_p).sum(-1, keepdim=True).clamp(min=1)
    threshold = desc.gather(-1, n_keep - 1)  # the smallest probability in the nucleus
    cdf = (probs * (probs >= threshold)).cumsum(-1)
    u = uniforms.to(cdf.device, cdf.dtype)[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[-1] - 1).squeeze(-1)


class ReservedLayer(DynamicLayer):
    """A DynamicLayer whose storage for `capacity` positions is reserved up front: each new position is
    written in place, where DynamicLayer concatenates and so copies the whole cache at every step.
    It serves the engine's own decoding loop, so it implements what that loop uses: update and
    batch_repeat_interleave (no beam search, cropping or resetting)."""

    is_croppable = False

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        b, h, _, d = key_states.shape
        self._keys = key_states.new_empty((b, h, self.capacity, d))
        self._values = value_states.new_empty((b, value_states.shape[1], self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def _expose(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = self._keys[:, :, :self.length], self._values[:, :, :self.length]
        return self.keys, self.values

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[2]:  # more than reserved: grow, as DynamicLayer would
            grow = (0, 0, 0, max(end, 2 * self._keys.shape[2]) - self._keys.shape[2])
            self._keys, self._values = (torch.nn.functional.pad(t, grow) for t in (self._keys, self._values))
        self._keys[:, :, self.length:end] = key_states
        self._values[:, :, self.length:end] = value_states
        self.length = end
        return self._expose()

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._keys = self._keys.repeat_interleave(repeats, 0)
            self._values = self._values.repeat_interleave(repeats, 0)
            self._expose()


class ReservedCache(DynamicCache):
    """A DynamicCache of ReservedLayers (one per model layer, made as the model first writes to it)."""

    def __init__(self, capacity: int):
        Cache.__init__(self, layer_class_to_replicate=partial(ReservedLayer, capacity))


ENGINES = ("auto", "fast", "generate")


def _uniforms(settings: GenSettings, keys: list[int], n: int, device) -> torch.Tensor:
    """Each answer's uniforms for every step, (rows, max_new_tokens), from its own seeded CPU stream."""
    return torch.stack([
        torch.rand(settings.max_new_tokens,
                   generator=torch.Generator(device="cpu").manual_seed(sample_seed(settings.seed, k, j)))
        for k in keys for j in range(n)]).to(device)


class _DrawnToken:
    """A logits processor for `generate`: every token but the nucleus draw of this step is removed, so
    that sampling from what is left returns the draw (the same rule and uniforms as the fast loop)."""

    def __init__(self, uniforms: torch.Tensor, prompt_width: int, settings: GenSettings):
        self.uniforms, self.width, self.settings = uniforms, prompt_width, settings

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.width
        token = nucleus_sample(scores, self.settings.temperature, self.settings.top_p, self.uniforms[:, step])
        return torch.full_like(scores, float("-inf")).scatter_(1, token[:, None], 0.0)


class Generator:
    def __init__(self, model, processor, batch_size: int = 8, engine: str = "auto", inference_tags=None):
        """engine: "fast" (our decoding loop), "generate" (transformers' `generate`, the generic path), or
        "auto": the fast loop where the family allows it. Both give the same answers (tested per family).
        inference_tags: prompts as the reference's ckpt_infer writes them (PromptEncoder)."""
        self.model = model
        self.processor = processor
        self.family = family_of_model(model)
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
        self.use_generate = engine == "generate" or (engine == "auto" and not self.family.fast_decoding)
        self.encoder = PromptEncoder(processor, self.family, inference_tags=inference_tags)
        self.batch_size = batch_size
        self.tokenizer = processor.tokenizer
        self.pad_id = pad_token_id(self.tokenizer)
        # An answer ends at EOS, at the family's end-of-turn tokens, or at any id the checkpoint's
        # generation config names as its end (a second end-of-text or end-of-turn id).
        configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        configured = [] if configured is None else [configured] if isinstance(configured, int) else list(configured)
        self.stop_ids = sorted(self.encoder.stop_ids | set(configured))
        self.max_positions = max_positions(model.config)
        self.stats = GenStats()

    def prompt_tokens(self, request: GenRequest) -> int:
        """The request's prompt length in tokens, the image's included (encoded once: generate reuses it)."""
        return len(self.encoder.encode_prompt(request.image, request.question).input_ids)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _decode_batch(self, batch: dict, settings: GenSettings, keys: list[int], n: int) -> torch.Tensor:
        """n answers per request, greedy or sampled, as a (rows, new tokens) tensor on the CPU.
        The image and prompt go through the model once per request; its n answers then share copies of
        its key/value cache. Sampling has one RNG stream per answer (keyed by its request), independent of
        batch makeup: each answer's uniforms are drawn up front on the CPU; the nucleus and the draw run on
        the model's device, vectorised over the batch (no per-step copy of logits to the host)."""
        model = self.model
        device = self.device
        uniforms = None if settings.greedy else _uniforms(settings, keys, n, device)
        inputs = self._inputs(batch)
        if self.use_generate:
            return self._generate_batch(inputs, settings, uniforms, n)
        stops = torch.tensor(self.stop_ids, device=device)
        pad = torch.tensor(self.pad_id, device=device)
        mask = batch["attention_mask"]
        cache = ReservedCache(mask.shape[1] + settings.max_new_tokens)
        # Positions are the family's: 1-D over real tokens for most, multimodal rotary positions for some.
        position_ids, position = self.family.prefill_positions(model, inputs)
        res = model(**inputs, position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1)
        logits = res.logits[:, -1].repeat_interleave(n, 0)
        cache.batch_repeat_interleave(n)
        # The mask has room for every new position up front; finished rows keep feeding pad tokens whose
        # outputs are discarded, so their mask can stay 1.
        rows, width = logits.shape[0], mask.shape[1]
        full_mask = torch.ones((rows, width + settings.max_new_tokens), dtype=mask.dtype, device=device)
        full_mask[:, :width] = mask.repeat_interleave(n, 0)
        position = position.repeat_interleave(n, 0)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        out = []
        for step in range(settings.max_new_tokens):
            if step:
                logits = model(input_ids=nxt[:, None], position_ids=self.family.step_positions(position + (step - 1)),
                               attention_mask=full_mask[:, :width + step], cache=cache, use_cache=True).logits[:, -1]
            if settings.greedy:
                nxt = logits.argmax(-1)
            else:
                nxt = nucleus_sample(logits, settings.temperature, settings.top_p, uniforms[:, step])
            nxt = torch.where(finished, pad, nxt)
            out.append(nxt)
            finished |= torch.isin(nxt, stops)
            if bool(finished.all()):
                break
        return torch.stack(out, 1).cpu() if out else torch.zeros((rows, 0), dtype=torch.long)

    def _inputs(self, batch: dict) -> dict:
        dtype = next(self.model.parameters()).dtype
        inputs = model_inputs(batch)
        inputs.update({k: v.to(dtype) for k, v in batch["images"].items() if v.is_floating_point()})
        return inputs

    def _generate_batch(self, inputs: dict, settings: GenSettings, uniforms, n: int) -> torch.Tensor:
        """The generic path: transformers' `generate` with the family's own input handling, under a
        generation config of ours alone (the checkpoint's sampling defaults, e.g. a repetition penalty,
        would silently change answers). Sampled tokens are drawn by the same nucleus rule from the same
        per-answer uniforms as the fast loop: a logits processor leaves only the drawn token."""
        from transformers import GenerationConfig, LogitsProcessorList

        width = inputs["input_ids"].shape[1]
        config = GenerationConfig(max_new_tokens=settings.max_new_tokens, num_beams=1, num_return_sequences=n,
                                  do_sample=not settings.greedy, temperature=None, top_k=None, top_p=None,
                                  eos_token_id=list(self.stop_ids), pad_token_id=self.pad_id)
        processors = LogitsProcessorList()
        if not settings.greedy:
            processors.append(_DrawnToken(uniforms, width, settings))
        out = self.model.generate(**inputs, generation_config=config, logits_processor=processors)
        return out[:, width:].cpu()

    @torch.no_grad()
    def generate(self, requests: list[GenRequest], settings: GenSettings) -> list[list[str]]:
        """Answers for each request (a list of num_return_sequences strings)."""
        import time

        self.model.eval()
        encoded = [self.encoder.encode_prompt(r.image, r.question) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (-len(encoded[i].input_ids), i))
        results: list[list[str] | None] = [None] * len(requests)
        # Group by num_return_sequences so each decoding loop has one n.
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(requests[i].num_return_sequences, []).append(i)
        for n, idxs in groups.items():
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start:start + self.batch_size]
                t0 = time.perf_counter()
                batch = batch_to(pad_batch([encoded[i] for i in chunk], self.pad_id, self.family, side="left"),
                                 self.device)
                keys = [requests[i].key if requests[i].key is not None else i for i in chunk]
                # Greedy samples of a request are all the same answer: made and decoded once, then copied.
                made = 1 if settings.greedy else n
                texts, new_tokens = self._decode(self._decode_batch(batch, settings, keys, made))
                for k, i in enumerate(chunk):
                    results[i] = texts[k * made:(k + 1) * made] * (n // made)
                self.stats.responses += n * len(chunk)
                self.stats.new_tokens += new_tokens * (n // made)
                self.stats.seconds += time.perf_counter() - t0
        return results  # type: ignore[return-value]

    def _decode(self, gen: torch.Tensor) -> tuple[list[str], int]:
        """Each row's text (up to its end token, pads left out) and the new tokens made, the end included."""
        stops = set(self.stop_ids)
        texts, new_tokens = [], 0
        for row in gen.tolist():
            end = next((i for i, t in enumerate(row) if t in stops), None)
            if end is not None:
                row = row[:end]
                new_tokens += end + 1
            else:  # cut off at max_new_tokens, or finished and padded: pads are not new tokens
                new_tokens += sum(1 for t in row if t != self.pad_id)
            texts.append(self.tokenizer.decode([t for t in row if t != self.pad_id], skip_special_tokens=True).strip())
        return texts, new_tokens


def answers_match(answer: str, target: str) -> bool:
    """Whitespace-insensitive exact match, the reproduction criterion of the vanilla check."""
    return " ".join(answer.split()) == " ".join(target.split())
