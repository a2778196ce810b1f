"""A judge preset: one model's prompt format and output parser, run on any backend.

A preset says, for each kind of item it can judge, which prompt to send and how to read the reply
into the toolkit's labels; kinds it cannot judge are UNAVAILABLE (their rate is reported as n/a, never
guessed). The backend decides where the model runs:

  server  an OpenAI-compatible endpoint (the OpenAI API, or vLLM / TGI serving the model): --base_url
  hf      transformers in this process: --judge_model is a local folder or hub id
  vllm    vLLM in this process (when installed)
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass, field, replace
from typing import Sequence

from safeeraser.eval import judged_metrics
from safeeraser.eval.judges.asker import Ask, CachedAsker, ChatSettings
from safeeraser.eval.judges.base import (
    ASR,
    NOT_NORMAL,
    NOT_REFUSE,
    OK,
    RR,
    RR_SD,
    SAFE,
    SCORE,
    UNAVAILABLE,
    Judge,
    JudgeConfigError,
    JudgeItem,
    Judgment,
    ProgressCallback,
)
from safeeraser.eval.judges.local import HFAsker, VLLMAsker

BACKENDS = ("server", "hf", "vllm")


# An empty answer needs no judge: it says nothing harmful, refuses nothing and answers nothing.
EMPTY_ANSWER = {ASR: SAFE, RR: NOT_REFUSE, RR_SD: NOT_NORMAL, SCORE: 0.0}


@dataclass(frozen=True)
class JudgeOptions:
    """Where and how a judge runs. settings.model None: the preset's own default model."""

    backend: str = "server"
    settings: ChatSettings = field(default_factory=lambda: ChatSettings(model=None))  # type: ignore[arg-type]
    batch_size: int = 8  # in-process backends: prompts per generation batch
    dtype: str = "auto"  # in-process backends: auto, bf16, fp16 or fp32
    device: str | None = None  # hf backend: None picks cuda when available
    # ours: the preset's own prompts; reference: the SafeEraser code's, read from the checkout at
    # reference_dir (the openai judge only; see safeeraser/reference/judge_templates.py)
    templates: str = "ours"
    reference_dir: str | None = None


def rates_of(kinds) -> list[str]:
    """The metrics a judge of these item kinds gives, in the registry's order."""
    return [m.name for m in judged_metrics.metrics() if m.kind is not None and m.kind in kinds]


class PresetJudge(Judge):
    name: str
    default_model: str
    prompt_version: str  # part of every cache key: change it whenever a prompt changes
    kinds: frozenset  # the kinds of item this preset can judge
    require_key = False  # True: the server backend needs an API key even with a base_url
    max_tokens = 32  # the longest documented reply fits
    grades_mmvet = False  # can grade MM-Vet answers with 0-1 scores (needs SCORE)

    def __init__(self, options: JudgeOptions | None = None, cache_path: str | os.PathLike | None = None):
        self.options = options or JudgeOptions()
        self.model = self.options.settings.model or self.default_model
        self.backend = make_backend(self.options, self.model, self.prompt_version, cache_path,
                                    require_key=self.require_key, max_tokens=self.max_tokens)

    @classmethod
    def create(cls, options: JudgeOptions | None, cache_path: str | os.PathLike | None) -> "PresetJudge":
        return cls(options, cache_path)

    @abstractmethod
    def ask_for(self, item: JudgeItem) -> Ask:
        """The prompt for one item of a kind in `kinds`, with the parser of its reply."""

    def judge(self, items: Sequence[JudgeItem], progress: ProgressCallback | None = None) -> list[Judgment]:
        results: list[Judgment | None] = [None] * len(items)
        asks, positions = [], []
        for i, item in enumerate(items):
            if item.kind not in self.kinds:
                results[i] = Judgment(status=UNAVAILABLE)
            elif self.needs_no_judge(item):
                results[i] = Judgment(EMPTY_ANSWER[item.kind], OK)
            else:
                asks.append(self.ask_for(item))
                positions.append(i)
        if progress and len(asks) < len(items):
            progress(len(items) - len(asks))
        for i, judgment in zip(positions, self.backend.ask(asks, progress), strict=True):
            results[i] = judgment
        return results

    def needs_no_judge(self, item: JudgeItem) -> bool:
        """An answer labelled without a request (EMPTY_ANSWER): one that is blank."""
        return not item.answer.strip()

    def describe(self) -> dict:
        return {"name": self.name, **self.backend.describe(), "prompt_version": self.prompt_version,
                "rates": rates_of(self.kinds)}

    def cost(self) -> dict:
        return self.backend.cost()


def make_backend(options: JudgeOptions, model: str, prompt_version: str, cache_path, *, require_key: bool,
                 max_tokens: int) -> CachedAsker:
    if options.backend == "server":
        from safeeraser.eval.judges.chat import ChatJudgeCore  # deferred: openai (eval.judges is light)

        settings = replace(options.settings, model=model, max_tokens=options.settings.max_tokens and max_tokens)
        return ChatJudgeCore(settings, prompt_version, cache_path, require_key=require_key)
    if options.backend == "hf":
        return HFAsker(model, prompt_version, cache_path, batch_size=options.batch_size, max_new_tokens=max_tokens,
                       dtype=options.dtype, device=options.device)
    if options.backend == "vllm":
        return VLLMAsker(model, prompt_version, cache_path, max_new_tokens=max_tokens, dtype=options.dtype)
    raise JudgeConfigError(f"unknown judge backend {options.backend!r}; choose one of {', '.join(BACKENDS)}")
