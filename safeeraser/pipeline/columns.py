"""The report's columns, registered once: what each shows, where its value comes from, which way is
better. The runner fills rows and intervals from it and the report renders it; adding a rate is one
line here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str  # the row's key
    name: str
    better: str | None  # "higher", "lower", or None (a diagnostic, not a score)
    split: str | None = None  # the judged split its per-record values come from (None: not a judged rate)
    metric: str | None = None  # the judged stats' summary name on that split (ASR, RR, SARR, ROUGE-L, GPT-Eval)

    @property
    def label(self) -> str:
        return self.name + {"higher": "↑", "lower": "↓", None: ""}[self.better]


COLUMNS = (
    Column("eff_asr", "Eff. ASR", "lower", "train", "ASR"),
    Column("eff_rr", "Eff. RR", "higher", "train", "RR"),
    Column("gen_asr", "Gen. ASR", "lower", "val", "ASR"),
    Column("gen_rr", "Gen. RR", "higher", "val", "RR"),
    Column("rouge_l", "ROUGE-L", "higher", "val", "ROUGE-L"),
    Column("gpt_eval", "GPT-Eval", "higher", "val", "GPT-Eval"),
    Column("specificity", "Spec.", "higher"),
    Column("sarr", "SARR", "lower", "val", "SARR"),
    Column("degen", "Degen.", None),  # share of harmful (val) answers that say nothing
)
RATES = tuple(c for c in COLUMNS if c.split)  # the judged rates: per-record values, intervals, PD effects
