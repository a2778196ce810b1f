"""What a benchmark is, to the toolkit: its splits as released, a reader that checks them (one DataError
naming the file, the record and the field), a generator of a small benchmark in the same format (for
tests and the CPU demo), and its tasks' scores (prediction/reference lists -> a number, as the
benchmark's own code computes it)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Benchmark:
    name: str
    splits: tuple[str, ...]
    read: Callable[[Path, str], list]  # (the benchmark's folder, a split) -> its records, checked
    make_mini: Callable[..., Path]  # (out folder, seed=...) -> the folder, in the released layout
    tasks: dict[str, Callable] = field(default_factory=dict)
