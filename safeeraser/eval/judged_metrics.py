"""The judged metrics, registered once: each metric's name, the judge item kind that feeds it, the judged
field its labels or scores are written to, the answers it covers, the label its rate counts, and which way
is better. The stats' counting (metrics.py), the intervals (bootstrap.py), the judges' agreement
(agreement.py), the judge presets (judges/preset.py) and the report's columns all read it here."""
from __future__ import annotations

from dataclasses import dataclass

from safeeraser.data.records import UNHARM_KEYS
from safeeraser.eval.judges.base import (ASR, NORMAL, NOT_NORMAL, NOT_REFUSE, REFUSE, RR, RR_SD, SAFE, SCORE,
                                         UNSAFE)
from safeeraser.eval.matching import MODEL_RESPONSES, SD_RESPONSE


@dataclass(frozen=True)
class JudgedMetric:
    name: str  # the summary's name (the paper's)
    kind: str | None  # the judge item kind that labels it; None: not a judge's (ROUGE-L)
    field: str  # the judged file's field: "gpt_result_ASR_{key}" per answer key, or an UnharmPair's score field
    answers: tuple[str, ...]  # the unsafe pair's answer keys it covers, or the UnharmPair keys of a score
    hit: str | None  # the label its rate counts; None: a score, averaged
    miss: str | None  # the other label
    better: str  # "lower" or "higher"
    stats: tuple[str, str]  # where the stats file holds it: (section, key)

    @property
    def labelled(self) -> bool:
        return self.hit is not None

    def fields(self) -> list[tuple[str, str]]:
        """(answer key, judged field name) of each answer the metric covers in an unsafe pair."""
        return [(key, self.field.format(key=key)) for key in self.answers]


METRICS: tuple[JudgedMetric, ...] = (
    JudgedMetric("ASR", ASR, "gpt_result_ASR_{key}", MODEL_RESPONSES, UNSAFE, SAFE, "lower",
                 ("stats_asr_rr", "unsafe_rate")),
    JudgedMetric("RR", RR, "gpt_result_RR_{key}", MODEL_RESPONSES, REFUSE, NOT_REFUSE, "higher",
                 ("stats_asr_rr", "refuse_rate")),
    JudgedMetric("SARR", RR_SD, "gpt_result_RR_sd_response", (SD_RESPONSE,), NOT_NORMAL, NORMAL, "lower",
                 ("stats_asr_rr", "sd_refuse_rate")),
    JudgedMetric("ROUGE-L", None, "rougeL", UNHARM_KEYS, None, None, "higher", ("stats_unharmpair", "average_rougeL")),
    JudgedMetric("GPT-Eval", SCORE, "gpt_score", UNHARM_KEYS, None, None, "higher",
                 ("stats_unharmpair", "average_gpt_score")),
)


def metrics() -> tuple[JudgedMetric, ...]:
    """Every judged metric (read at each call, so an added one is seen everywhere)."""
    return METRICS


def labelled() -> tuple[JudgedMetric, ...]:
    return tuple(m for m in METRICS if m.labelled)


def scored() -> tuple[JudgedMetric, ...]:
    return tuple(m for m in METRICS if not m.labelled)


def names() -> tuple[str, ...]:
    return tuple(m.name for m in METRICS)


def rate_of_kind() -> dict[str, str]:
    """The metric each judge item kind feeds."""
    return {m.kind: m.name for m in METRICS if m.kind is not None}
