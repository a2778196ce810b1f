"""Datasets for the loop: per item, one encoded example per view the method needs."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset, Sampler

from safeeraser.data.encode import PromptEncoder, pad_batch
from safeeraser.data.views import Example, ForgetItem

log = logging.getLogger(__name__)


@dataclass
class LengthCheck:
    """Warns, once per example, of a training example longer than the model's positions: inference skips
    such a record (ckpt_infer's too-long warning); training would fit its answer on positions the model
    never saw. `source` names the data file(s); max_positions None: no check."""

    max_positions: int | None = None
    source: str = "data"
    warned: set = field(default_factory=set)

    def __call__(self, encoded, where: str) -> None:
        if not self.max_positions:
            return
        tokens = int(encoded.input_ids.shape[0])
        if tokens > self.max_positions and where not in self.warned:
            self.warned.add(where)
            log.warning("%s: %s: %d tokens with the image's, beyond the model's %d positions: the answer trains "
                        "on positions the model never saw (set max_length to cut it; inference skips such a "
                        "record)", self.source, where, tokens, self.max_positions)


@dataclass(frozen=True)
class Pairing:
    """Which examples go with forget item i (the config's retain_pairing, pd_pairing and text_casing).

    record / own / keep (ours): the retain example is one of the forget pair's own record's harmless pairs,
    the PD example the pair's own SD example, the text as written. reference: the retain example is drawn
    from every record's harmless pairs, at (i + r) % R for a uniform r < R, as the reference's data_module
    draws it; its PD example is forget item number (i + r) % R's, the index the reference reads it at (the
    pair's own only by chance); capitalize: str.capitalize() on every question and answer and, blanks
    stripped first, on the refusal, as the reference does."""

    retain: str = "record"
    pd: str = "own"
    casing: str = "keep"


def _capitalized(ex: Example, view: str) -> Example:
    answer = ex.answer.strip(" ") if view == "idk" else ex.answer
    return Example(ex.image, ex.question.capitalize(), answer.capitalize())


class UnlearnDataset(Dataset):
    """Item i: forget item i's views. Retain and refusal draws depend on (seed, epoch, i) only,
    so a resumed run draws exactly what an uninterrupted one would."""

    def __init__(self, items: list[ForgetItem], views: list[str], encoder: PromptEncoder, refusals: list[str],
                 seed: int, pairing: Pairing = Pairing(), all_retain: tuple[Example, ...] = (),
                 length_check: LengthCheck | None = None):
        self.items, self.views, self.encoder, self.refusals, self.seed = items, views, encoder, refusals, seed
        self.pairing, self.all_retain = pairing, all_retain
        self.length_check = length_check or LengthCheck()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        rng = random.Random(f"{self.seed}-{self.epoch}-{i}")
        item = self.items[i]
        drawn = {}
        if self.pairing.retain == "reference" and ("retain" in self.views or "pd" in self.views):
            j = (i + rng.randrange(len(self.all_retain))) % len(self.all_retain)
            drawn["retain"] = self.all_retain[j]
            if self.pairing.pd == "reference":
                if j >= len(self.items):  # build_dataset refuses such data up front; this is the backstop
                    raise IndexError(f"the reference's PD draw reached index {j} of {len(self.items)} PD examples")
                drawn["pd"] = self.items[j].pd
        out = {}
        for v in self.views:
            ex = drawn[v] if v in drawn else item.view(v, rng, self.refusals)
            if self.pairing.casing == "capitalize":
                ex = _capitalized(ex, v)
            out[v] = self.encoder.encode(*_fields(ex))
            self.length_check(out[v], f"record {item.record}, unsafe_pairs[{item.pair}], view '{v}'")
        return out


class TargetDataset(Dataset):
    """Plain examples under one view name (`target`): the vanilla fine-tuning data."""

    def __init__(self, examples: list[Example], encoder: PromptEncoder, length_check: LengthCheck | None = None):
        self.examples, self.encoder = examples, encoder
        self.length_check = length_check or LengthCheck()

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        encoded = self.encoder.encode(*_fields(ex))
        self.length_check(encoded, f"example {i} (image '{ex.image}')")
        return {"target": encoded}


def _fields(ex: Example):
    return ex.image, ex.question, ex.answer


class EpochSampler(Sampler):
    """A shuffle that is a pure function of (seed, epoch), for exact resumption."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class InOrderSampler(Sampler):
    """Every epoch in file order, as the reference's loader (shuffle=False) reads it."""

    def __init__(self, n: int):
        self.n = n

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(range(self.n))


def train_sampler(dataset, cfg):
    """The training loop's sampler (an object with set_epoch)."""
    if cfg.data.data_order == "sequential":
        return InOrderSampler(len(dataset))
    return EpochSampler(len(dataset), cfg.optim.seed)


class ViewCollator:
    def __init__(self, pad_id: int, family):
        self.pad_id, self.family = pad_id, family

    def __call__(self, rows: list[dict]) -> dict:
        return {v: pad_batch([r[v] for r in rows], self.pad_id, self.family) for v in rows[0]}
