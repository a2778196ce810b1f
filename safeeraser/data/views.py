"""Training views of a SafeEraser file (SPEC.md): forget, retain, pd, idk.

Every forget example carries its own pd example (same record, same question, SD image), so
the pairing never depends on the relative sizes of the views.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from safeeraser.data.records import Record
from safeeraser.data.refusals import DEFAULT_REFUSALS
from safeeraser.io import DataError



@dataclass(frozen=True)
class Example:
    image: Path
    question: str
    answer: str


@dataclass(frozen=True)
class ForgetItem:
    """One unsafe pair and everything a method may need for it."""

    record: int
    pair: int
    forget: Example
    pd: Example
    retain_pool: tuple[Example, ...]  # the record's harmless pairs; one is drawn per epoch

    def view(self, name: str, rng: random.Random, refusals: list[str]) -> Example:
        if name == "forget":
            return self.forget
        if name == "pd":
            return self.pd
        if name == "retain":
            return rng.choice(self.retain_pool)
        if name == "idk":
            return Example(self.forget.image, self.forget.question, rng.choice(refusals))
        raise KeyError(name)


def forget_items(records: list[Record]) -> list[ForgetItem]:
    items = []
    for rec in records:
        retain = tuple(Example(rec.image, p["Question"], p["Prediction"]) for _, p in rec.unharm_pairs())
        for j, pair in enumerate(rec.unsafe_pairs):
            q = pair["question"]
            items.append(ForgetItem(
                record=rec.index, pair=j,
                forget=Example(rec.image, q, pair["model_response"]),
                pd=Example(rec.sd_image, q, pair["sd_response"]),
                retain_pool=retain,
            ))
    return items


def all_retain(records: list[Record]) -> tuple[Example, ...]:
    """Every record's harmless pairs in file order: the pool the reference draws retain examples from."""
    return tuple(Example(rec.image, p["Question"], p["Prediction"]) for rec in records for _, p in rec.unharm_pairs())


def vanilla_examples(records: list[Record]) -> list[Example]:
    """What the vanilla model answers: harmful, SD and harmless pairs, all as plain targets."""
    out = []
    for rec in records:
        for pair in rec.unsafe_pairs:
            out.append(Example(rec.image, pair["question"], pair["model_response"]))
            out.append(Example(rec.sd_image, pair["question"], pair["sd_response"]))
        out += [Example(rec.image, p["Question"], p["Prediction"]) for _, p in rec.unharm_pairs()]
    return out


def load_refusals(path: str | Path | None) -> list[str]:
    """Refusal targets from prompt.json's `idk` list, or the shipped defaults."""
    import json

    if not path:
        return list(DEFAULT_REFUSALS)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (refusals for the idk view)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    idk = data.get("idk") if isinstance(data, dict) else None
    if not isinstance(idk, list) or not idk or not all(isinstance(s, str) and s.strip() for s in idk):
        raise DataError(f"{path}: field 'idk': expected a non-empty list of strings")
    return idk
