"""Datasets for the loop: per item, one encoded example per view the method needs."""
from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset, Sampler

from safeeraser.data.encode import PromptEncoder, pad_batch
from safeeraser.data.views import Example, ForgetItem


class UnlearnDataset(Dataset):
    """Item i: forget item i's views. Retain and refusal draws depend on (seed, epoch, i) only,
    so a resumed run draws exactly what an uninterrupted one would."""

    def __init__(self, items: list[ForgetItem], views: list[str], encoder: PromptEncoder, refusals: list[str],
                 seed: int):
        self.items, self.views, self.encoder, self.refusals, self.seed = items, views, encoder, refusals, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        rng = random.Random(f"{self.seed}-{self.epoch}-{i}")
        item = self.items[i]
        return {v: self.encoder.encode(*_fields(item.view(v, rng, self.refusals))) for v in self.views}


class TargetDataset(Dataset):
    """Plain examples under one view name (`target`): the vanilla fine-tuning data."""

    def __init__(self, examples: list[Example], encoder: PromptEncoder):
        self.examples, self.encoder = examples, encoder

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return {"target": self.encoder.encode(*_fields(self.examples[i]))}


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


def train_sampler(dataset, cfg):
    """The training loop's sampler (an object with set_epoch)."""
    return EpochSampler(len(dataset), cfg.seed)


class ViewCollator:
    def __init__(self, pad_id: int, family):
        self.pad_id, self.family = pad_id, family

    def __call__(self, rows: list[dict]) -> dict:
        return {v: pad_batch([r[v] for r in rows], self.pad_id, self.family) for v in rows[0]}
