"""What a membership-inference attack is: a score per example, higher for what looks like a member,
from the evidence the suite gathers for it (suite.py): the model's answer scores (always), the answer's
text, a reference model's answer scores (`needs` "reference") or the norm of the answer NLL's gradient
(`needs` "gradient")."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from safeeraser.eval.likelihood import AnswerScores


@dataclass(frozen=True)
class Evidence:
    scores: AnswerScores
    answer: str
    reference: AnswerScores | None = None
    grad_norm: float | None = None


@dataclass(frozen=True)
class Attack:
    name: str
    score: Callable[[Evidence, dict], float]  # (evidence, options such as k) -> score, higher = member
    needs: frozenset[str] = frozenset()
