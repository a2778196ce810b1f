"""Registry of benchmarks: each one module (its released format read and checked, a mini generator in
that format, its tasks' scores) and a line here: name -> module (in this package or a dotted path).
Light: no torch, no pyarrow at import."""
from __future__ import annotations

from typing import TYPE_CHECKING

from safeeraser.registry import load_registered

if TYPE_CHECKING:
    from safeeraser.benchmarks.base import Benchmark

REGISTRY = {
    "safeeraser": "safeeraser",
    "mllmu": "mllmu",
    "fiubench": "fiubench",
    "clear": "clear",
    "umu": "umu",
}


def benchmark_for(name: str) -> Benchmark:
    if name not in REGISTRY:
        raise KeyError(f"unknown benchmark '{name}'; choose from {', '.join(REGISTRY)}")
    return load_registered(__name__, REGISTRY[name], "BENCHMARK")
