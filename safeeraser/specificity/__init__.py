"""Specificity: the unlearned model's scores on seven general MLLM benchmarks (GQA, VizWiz,
ScienceQA-IMG, VQAv2, POPE, MM-Vet, MMBench), read from their usual files and scored by their usual
rules, and their average."""
from __future__ import annotations

from pathlib import Path

from safeeraser.specificity.base import PredictFn, Question, Request
from safeeraser.specificity.grader import Grader, OfflineGrader
from safeeraser.specificity.registry import BENCHMARKS, get_benchmark
from safeeraser.specificity.runner import run_specificity
from safeeraser.specificity.score import score_predictions


def builtin_data_root() -> Path:
    """The small fixture set shipped with the package: a few questions per benchmark in the real
    file formats, with tiny drawn images. For demos and smoke tests; its scores mean nothing."""
    return Path(__file__).parent / "fixtures"


__all__ = ["BENCHMARKS", "Grader", "OfflineGrader", "PredictFn", "Question", "Request", "builtin_data_root",
           "get_benchmark", "run_specificity", "score_predictions"]
