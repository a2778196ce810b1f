"""MM-Vet grading through the toolkit's OpenAI-compatible judge (cache, concurrency, retries)."""
from __future__ import annotations

import os

from safeeraser.eval.judges.base import OK
from safeeraser.eval.judges.chat import Ask, ChatJudgeCore, ChatSettings
from safeeraser.eval.judges.parsing import parse_score
from safeeraser.eval.judges.prompts import GRADED_ANSWER_BLOCK

PROMPT_VERSION = "mmvet-grader-v1"
TEMPLATE = """You grade a vision-language model's answer to a question about an image against the \
ground truth. In the ground truth, <AND> joins parts that are all required and <OR> joins \
alternatives of which one is enough. Give 1.0 for a fully correct answer, 0.0 for a wrong one, and \
partial credit in between for a partly correct one.

""" + GRADED_ANSWER_BLOCK + """

Reply with the score only, a number between 0.0 and 1.0."""


class ChatGrader:
    """The Grader protocol (grader.py) over ChatJudgeCore: None where the judge's reply is unreadable."""

    def __init__(self, settings: ChatSettings, cache_path: str | os.PathLike | None):
        self.core = ChatJudgeCore(settings, PROMPT_VERSION, cache_path)

    def grade(self, items: list[dict]) -> list[float | None]:
        asks = [Ask(TEMPLATE.format(question=i["question"], reference=i["ground_truth"], answer=i["prediction"]),
                    parse_score) for i in items]
        return [j.value if j.status == OK else None for j in self.core.ask(asks)]
