"""The benchmarks by name, in the order of the paper's Specificity column."""
from __future__ import annotations

from safeeraser.io import DataError
from safeeraser.specificity.base import Benchmark
from safeeraser.specificity.gqa import GQA
from safeeraser.specificity.mmbench import MMBench
from safeeraser.specificity.mmvet import MMVet
from safeeraser.specificity.pope import POPE
from safeeraser.specificity.sqa import ScienceQA
from safeeraser.specificity.vizwiz import VizWiz
from safeeraser.specificity.vqav2 import VQAv2

BENCHMARKS: dict[str, type[Benchmark]] = {
    cls.name: cls for cls in (GQA, VizWiz, ScienceQA, VQAv2, POPE, MMVet, MMBench)
}


def get_benchmark(name: str, grader=None) -> Benchmark:
    """A benchmark by name; `grader` grades the benchmarks that need a judge (MM-Vet)."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark '{name}'; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](grader)


def parse_benchmark_names(text: str) -> list[str]:
    """'gqa,pope' -> ['gqa', 'pope'], each name checked, duplicates dropped."""
    names = []
    for name in (part.strip().lower() for part in text.split(",")):
        if not name:
            continue
        if name not in BENCHMARKS:
            raise DataError(f"unknown benchmark '{name}'; choose from {', '.join(BENCHMARKS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise DataError("no benchmark named")
    return names
