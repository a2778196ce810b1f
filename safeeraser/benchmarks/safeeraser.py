"""SafeEraser (Chen et al. 2025) on the benchmark seam: its JSON files (all_train.json, all_val.json and
the prompt file) read and checked by data/records.py, its mini by data/mini.py. Its tasks (Efficacy,
Generality, ROUGE-L, GPT-Eval, SARR) are scored by eval/ through the judges."""
from __future__ import annotations

from pathlib import Path

from safeeraser.benchmarks.base import Benchmark
from safeeraser.data.mini import make_mini as make
from safeeraser.data.records import load_benchmark


def read(root: Path, split: str) -> list:
    return load_benchmark(Path(root) / f"{split}.json")


def make_mini(out: Path, seed: int = 0, **sizes) -> Path:
    make(out, seed=seed, **sizes)
    return Path(out)


BENCHMARK = Benchmark("safeeraser", ("all_train", "all_val"), read, make_mini)
