"""Judges for SafeEraser labels: `make_judge("openai" | "keyword", ...)`.

The generic core (`chat.ChatJudgeCore`, `chat.Ask`, `parsing.parse_score`) is what another benchmark
reuses to grade with its own prompts.
"""

from __future__ import annotations

import os

from safeeraser.eval.judges.base import Judge, JudgeConfigError, JudgeItem, Judgment
from safeeraser.eval.judges.chat import ChatSettings
from safeeraser.eval.judges.keyword import KeywordJudge
from safeeraser.eval.judges.openai_judge import OpenAIJudge

JUDGES = ("openai", "keyword")


def make_judge(
    name: str = "openai",
    *,
    settings: ChatSettings | None = None,
    cache_path: str | os.PathLike | None = None,
) -> Judge:
    """`settings` and `cache_path` apply to the openai judge only (the keyword judge needs neither)."""
    if name == "openai":
        return OpenAIJudge(settings or ChatSettings(), cache_path)
    if name == "keyword":
        return KeywordJudge()
    raise JudgeConfigError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")


__all__ = ["JUDGES", "ChatSettings", "Judge", "JudgeConfigError", "JudgeItem", "Judgment", "make_judge"]
