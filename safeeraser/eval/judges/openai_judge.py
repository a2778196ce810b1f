"""The reference's judge (`openai`, the default): GPT-4o-style prompts to any chat model.

Rates: ASR, RR, SARR and GPT-Eval (the only preset that grades UnharmPair answers, and MM-Vet).
Prompts: prompts.py. Backends: server (the OpenAI API or any OpenAI-compatible endpoint; needs an
API key), hf or vllm (any local chat model, through its own chat template).
"""

from __future__ import annotations

from functools import partial

from safeeraser.eval.judges.asker import Ask
from safeeraser.eval.judges.base import ASR, RR, RR_SD, SCORE, JudgeItem
from safeeraser.eval.judges.parsing import parse_choice, parse_score
from safeeraser.eval.judges.preset import EMPTY_ANSWER, PresetJudge
from safeeraser.eval.judges.prompts import CHOICES, PROMPT_VERSION, build_prompt

__all__ = ["EMPTY_ANSWER", "OpenAIJudge"]


class OpenAIJudge(PresetJudge):
    name = "openai"
    default_model = "gpt-4o"
    prompt_version = PROMPT_VERSION
    kinds = frozenset({ASR, RR, RR_SD, SCORE})
    require_key = True
    max_tokens = 16  # the prompts ask for one word or one number
    grades_mmvet = True

    def ask_for(self, item: JudgeItem) -> Ask:
        parse = parse_score if item.kind == SCORE else partial(parse_choice, options=CHOICES[item.kind])
        return Ask(build_prompt(item), parse)

