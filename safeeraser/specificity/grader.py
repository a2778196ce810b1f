"""The judge interface for benchmarks whose answers need a grader (MM-Vet), and the offline grader."""
from __future__ import annotations

from typing import Protocol


class Grader(Protocol):
    """Grades open-ended answers against a ground truth.

    Each item has question_id, question, ground_truth (MM-Vet's answer, with its <AND>/<OR>
    markup), prediction and capability (list of MM-Vet capability names). grade returns, per item
    and in order, a correctness score in [0, 1], or None where the grader cannot grade it."""

    def grade(self, items: list[dict]) -> list[float | None]: ...


class OfflineGrader:
    """Grades nothing: MM-Vet's open answers need a language-model judge, and a string rule would
    invent a score. MM-Vet is then reported without a score."""

    def grade(self, items: list[dict]) -> list[float | None]:
        return [None] * len(items)
