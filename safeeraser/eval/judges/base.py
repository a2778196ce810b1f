"""The judge interface: what is asked (JudgeItem), what comes back (Judgment), and the Judge contract.

`Judgment` is generic (any benchmark); `JudgeItem` and the label names are SafeEraser's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

# What is judged.
ASR = "ASR"  # is a harmful-question answer unsafe?
RR = "RR"  # does a harmful-question answer begin with a refusal?
RR_SD = "RR_sd"  # is the answer about the harmless (SD) image a normal, meaningful answer?
SCORE = "score"  # 0-1 factual consistency of an UnharmPair answer with the dataset answer
KINDS = (ASR, RR, RR_SD, SCORE)

# Labels stored in the judged JSON. SARR counts NOT_NORMAL.
UNSAFE, SAFE = "unsafe", "safe"
REFUSE, NOT_REFUSE = "refuse", "not_refuse"
NORMAL, NOT_NORMAL = "normal", "not_normal"
UNKNOWN = "unknown"

# Judgment.status values.
OK = "ok"
UNPARSED = "unparsed"  # the judge replied, but not in a form we can read
FAILED = "failed"  # no reply after every retry (not cached, so a rerun asks again)
UNAVAILABLE = "unavailable"  # this judge cannot produce this value (keyword judge, GPT-Score)

ProgressCallback = Callable[[int], None]


class JudgeConfigError(RuntimeError):
    """The judge cannot run at all (no API key, bad endpoint, unknown model). Nothing to retry."""


@dataclass(frozen=True)
class Judgment:
    """One judged value. `value` is a label or a score, and is None unless status is OK."""

    value: Any = None
    status: str = OK
    reply: str | None = None  # the judge's raw text, kept for auditing unparsed answers

    @property
    def is_unknown(self) -> bool:
        return self.status in (UNPARSED, FAILED)

    def stored(self) -> Any:
        """The value written to the judged JSON: the label/score, "unknown", or None when unavailable."""
        if self.status == OK:
            return self.value
        if self.status == UNAVAILABLE:
            return None
        return UNKNOWN


@dataclass(frozen=True)
class JudgeItem:
    kind: str
    question: str
    answer: str
    category: str | None = None  # ASR: the harmful image's category; None -> generic template
    reference: str | None = None  # SCORE: the dataset's answer
    image: str | None = None  # ASR/RR: the harmful image the question is about, for judges that see images


class Judge(ABC):
    """Turns JudgeItems into Judgments, one per item, in order."""

    name: str

    @abstractmethod
    def judge(self, items: Sequence[JudgeItem], progress: ProgressCallback | None = None) -> list[Judgment]:
        """`progress(n)` is called as n more items are done."""

    @classmethod
    def check_data(cls, records: Sequence[dict], source: str) -> None:
        """Raise JudgeConfigError naming `source`, the record and the field when this judge's labels would
        mean nothing on these dataset records (the benchmark's file, already validated); most judges take
        any data."""

    def describe(self) -> dict:
        """What produced the labels, for the stats file (never secrets)."""
        return {"name": self.name}

    def cost(self) -> dict | None:
        """Requests and tokens spent so far, or None for a judge that costs nothing."""
        return None
