"""Batched generation with left padding, requests sorted by length, one call per batch.

Sampling uses a generator seeded per request, so the same seed gives the same answers whatever the
batch size; greedy output is identical for any batch size up to floating-point ties.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from safeeraser.data.encode import Encoded, PromptEncoder, pad_batch


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


class Generator:
    def __init__(self, model, processor, batch_size: int = 8):
        self.model = model
        self.processor = processor
        self.encoder = PromptEncoder(processor)
        self.batch_size = batch_size
        self.tokenizer = processor.tokenizer
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        self.stats = GenStats()

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _sample_batch(self, batch: dict, settings: GenSettings, keys: list[int], n: int) -> torch.Tensor:
        """Sampling with one RNG stream per request (keyed by its index), independent of batch makeup."""
        model = self.model
        input_ids = batch["input_ids"].repeat_interleave(n, 0)
        mask = batch["attention_mask"].repeat_interleave(n, 0)
        pixels = batch["pixel_values"].repeat_interleave(n, 0)
        gens = [torch.Generator(device="cpu").manual_seed(settings.seed * 1_000_003 + k * 31 + j)
                for k in keys for j in range(n)]
        eos = self.tokenizer.eos_token_id
        out = []
        past = None
        cur_ids, cur_mask = input_ids, mask
        finished = torch.zeros(len(gens), dtype=torch.bool)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        for step in range(settings.max_new_tokens):
            kwargs = dict(attention_mask=cur_mask, cache=past, use_cache=True)
            if past is None:
                res = model(input_ids=cur_ids, pixel_values=pixels.to(next(model.parameters()).dtype), position_ids=position_ids, **kwargs)
            else:
                pos = (cur_mask.sum(-1, keepdim=True) - 1)
                res = model(input_ids=cur_ids, position_ids=pos, **kwargs)
            past = res.cache
            logits = res.logits[:, -1].float().cpu() / max(settings.temperature, 1e-5)
            probs = torch.softmax(logits, -1)
            sorted_p, idx = probs.sort(-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < settings.top_p  # nucleus: the smallest set reaching top_p
            sorted_p = sorted_p * keep
            nxt = torch.stack([idx[i, torch.multinomial(sorted_p[i], 1, generator=g)][0] for i, g in enumerate(gens)])
            nxt = torch.where(finished, torch.full_like(nxt, self.pad_id), nxt)
            out.append(nxt)
            finished |= nxt == eos
            if finished.all():
                break
            cur_ids = nxt[:, None].to(self.device)
            # Finished rows keep feeding pad tokens; their outputs are discarded, so their mask can stay 1.
            cur_mask = torch.cat([cur_mask, torch.ones_like(cur_mask[:, :1])], dim=1)
        return torch.stack(out, 1) if out else torch.zeros((len(gens), 0), dtype=torch.long)

    @torch.no_grad()
    def generate(self, requests: list[GenRequest], settings: GenSettings,
                 on_batch: Callable[[list[int], list[list[str]]], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> list[list[str]]:
        """Answers for each request (a list of num_return_sequences strings). `on_batch` receives
        (request indices, answers) as each batch finishes, for incremental saving."""
        import time

        self.model.eval()
        encoded = []
        for r in requests:
            ids, pixels = self.encoder.encode_prompt(r.image, r.question)
            encoded.append(Encoded(ids, ids.clone(), pixels))
        order = sorted(range(len(requests)), key=lambda i: (-len(encoded[i].input_ids), i))
        results: list[list[str] | None] = [None] * len(requests)
        # Group by num_return_sequences so each generate call has one n.
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(requests[i].num_return_sequences, []).append(i)
        for n, idxs in groups.items():
            for start in range(0, len(idxs), self.batch_size):
                chunk = idxs[start:start + self.batch_size]
                t0 = time.perf_counter()
                batch = pad_batch([encoded[i] for i in chunk], self.pad_id, side="left")
                batch = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
                if settings.greedy:
                    gen = self.model.generate(
                        **batch, max_new_tokens=settings.max_new_tokens, do_sample=False,
                        pad_token_id=self.pad_id, eos_token_id=self.tokenizer.eos_token_id,
                    )[:, batch["input_ids"].shape[1]:].cpu()
                    gen = gen.repeat_interleave(n, 0)  # greedy samples are all the same answer
                else:
                    keys = [requests[i].key if requests[i].key is not None else i for i in chunk]
                    gen = self._sample_batch(batch, settings, keys, n)
                texts = self._decode(gen)
                answers = [texts[k * n:(k + 1) * n] for k in range(len(chunk))]
                for i, a in zip(chunk, answers):
                    results[i] = a
                self.stats.responses += len(texts)
                self.stats.new_tokens += int(self._count_new_tokens(gen))
                self.stats.seconds += time.perf_counter() - t0
                if on_batch:
                    on_batch(chunk, answers)
                if progress:
                    progress(len(chunk))
        return results  # type: ignore[return-value]

    def _count_new_tokens(self, gen: torch.Tensor) -> int:
        eos = self.tokenizer.eos_token_id
        total = 0
        for row in gen.tolist():
            total += row.index(eos) + 1 if eos in row else sum(1 for t in row if t != self.pad_id)
        return total

    def _decode(self, gen: torch.Tensor) -> list[str]:
        eos = self.tokenizer.eos_token_id
        rows = []
        for row in gen.tolist():
            if eos in row:
                row = row[: row.index(eos)]
            rows.append(self.tokenizer.decode([t for t in row if t != self.pad_id], skip_special_tokens=True).strip())
        return rows


def answers_match(answer: str, target: str) -> bool:
    """Whitespace-insensitive exact match, the reproduction criterion of the vanilla check."""
    return " ".join(answer.split()) == " ".join(target.split())


def iter_chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
