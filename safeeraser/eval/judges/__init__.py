"""Judges for SafeEraser labels, and their registry: one module per judge, one line in JUDGES.

    judge         model (default)                    sees image  ASR  RR   SARR  GPT-Eval
    openai        gpt-4o (any chat model)            no          yes  yes  yes   yes
    keyword       (rules, offline)                   no          yes  yes  yes   n/a
    truth         (exact, the mini benchmark only)   no          yes  yes  yes   exact match
    llamaguard    meta-llama/Llama-Guard-3-8B        no          yes  n/a  n/a   n/a
    llamaguard4   meta-llama/Llama-Guard-4-12B       yes         yes  n/a  n/a   n/a
    wildguard     allenai/wildguard                  no          yes  yes  n/a   n/a
    harmbench     cais/HarmBench-Llama-2-13b-cls     no          yes  n/a  n/a   n/a

A rate a judge cannot produce is reported as n/a (None), never guessed. Every model judge runs on a
backend: `server` (an OpenAI-compatible endpoint), `hf` (transformers in-process) or `vllm`.
The pipeline and `safeeraser specificity` choose judges through this registry only.

The generic core (`chat.ChatJudgeCore`, `asker.Ask`, `parsing.parse_score`) is what another benchmark
reuses to grade with its own prompts. Importing this package is light: a judge's module, and the
OpenAI client or torch, are imported only when that judge is made.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import fields
from typing import Any, Mapping

from safeeraser.eval.judges.asker import ChatSettings, resolve_api_key
from safeeraser.eval.judges.base import Judge, JudgeConfigError, JudgeItem, Judgment
from safeeraser.eval.judges.preset import BACKENDS, JudgeOptions

JUDGES = {
    "openai": "safeeraser.eval.judges.openai_judge:OpenAIJudge",
    "keyword": "safeeraser.eval.judges.keyword:KeywordJudge",
    "truth": "safeeraser.eval.judges.truth:TruthJudge",
    "llamaguard": "safeeraser.eval.judges.llamaguard:LlamaGuard3",
    "llamaguard4": "safeeraser.eval.judges.llamaguard:LlamaGuard4",
    "wildguard": "safeeraser.eval.judges.wildguard:WildGuard",
    "harmbench": "safeeraser.eval.judges.harmbench:HarmBench",
}
ALIASES = {"offline": "keyword"}  # `safeeraser specificity`'s former name for the keyword judge


class JudgeOptionError(JudgeConfigError):
    """A judge option is wrong; `key` names it (as in the pipeline's `judge:` block)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in JUDGES:
        raise JudgeOptionError("name", f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")
    return name


def judge_class(name: str) -> type:
    module, cls = JUDGES[canonical_name(name)].split(":")
    return getattr(importlib.import_module(module), cls)


def check_options(name: str, options: JudgeOptions, check_key: bool = True) -> None:
    """What can be checked without loading anything: the backend, and (check_key) the API key where one
    is needed. Raises JudgeOptionError naming the option."""
    cls = judge_class(name)
    if options.templates != "ours" and not getattr(cls, "has_reference_templates", False):
        raise JudgeOptionError("templates", f"only a judge with the reference's prompts (openai) takes "
                                            f"templates={options.templates}")
    if not hasattr(cls, "prompt_version"):  # a rule-based judge: no backend, nothing to check
        return
    if options.backend not in BACKENDS:
        raise JudgeOptionError("backend", f"{options.backend!r}; choose one of {', '.join(BACKENDS)}")
    if options.backend == "server" and check_key:
        try:
            resolve_api_key(options.settings, cls.require_key)
        except JudgeConfigError as exc:
            raise JudgeOptionError("api_key" if cls.require_key else "base_url", str(exc)) from None
    if options.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise JudgeOptionError("backend", "vllm is not installed (pip install vllm); use hf or a served model")


def make_judge(
    name: str = "openai",
    *,
    settings: ChatSettings | None = None,
    cache_path: str | os.PathLike | None = None,
    backend: str = "server",
    batch_size: int = 8,
    dtype: str = "auto",
    device: str | None = None,
    templates: str = "ours",
    reference_dir: str | None = None,
) -> Judge:
    """The judge `name` on `backend`. settings.model is the served model's name or the local model's
    path (None or absent: the judge's default); the cache applies to every model judge."""
    settings = settings or ChatSettings(model=None)  # type: ignore[arg-type]
    options = JudgeOptions(backend=backend, settings=settings, batch_size=batch_size, dtype=dtype, device=device,
                           templates=templates, reference_dir=reference_dir)
    check_options(name, options)
    return judge_class(name).create(options, cache_path)


# The keys of the pipeline's `judge:` block besides `name`, and their types.
CHAT_KEYS = {f.name: f.type for f in fields(ChatSettings)}
LOCAL_KEYS = {"backend": "str", "batch_size": "int", "dtype": "str", "device": "str | None", "templates": "str",
              "reference_dir": "str | None"}


def options_from_config(config: Mapping[str, Any], check_key: bool = True) -> tuple[str, dict]:
    """(judge name, make_judge keyword arguments) from a `judge:` block such as
    {name: wildguard, backend: hf, model: /models/wildguard, batch_size: 16}. Raises JudgeOptionError;
    check_key False leaves out the API key (a config file checked on a machine that will not run it)."""
    config = dict(config)
    if "name" not in config:
        raise JudgeOptionError("name", f"missing; choose one of {', '.join(JUDGES)}")
    name = canonical_name(str(config.pop("name")))
    chat, local = {}, {}
    for key, value in config.items():
        if key not in CHAT_KEYS and key not in LOCAL_KEYS:
            known = ", ".join(["name", *CHAT_KEYS, *LOCAL_KEYS])
            raise JudgeOptionError(key, f"unknown judge option; known: {known}")
        expected = CHAT_KEYS.get(key) or LOCAL_KEYS[key]
        if value is not None or "None" not in str(expected):
            _check_type(key, value, str(expected))
        (chat if key in CHAT_KEYS else local)[key] = value
    for key in ("concurrency", "batch_size"):
        if key in config and config[key] < 1:
            raise JudgeOptionError(key, "must be at least 1")
    if config.get("max_retries", 0) < 0 or config.get("timeout", 1) <= 0:
        raise JudgeOptionError("max_retries" if config.get("max_retries", 0) < 0 else "timeout",
                               "max_retries must be >= 0 and timeout > 0")
    kwargs = {"settings": ChatSettings(**{"model": None, **chat}), **local}
    check_options(name, JudgeOptions(**{"settings": kwargs["settings"], **local}), check_key)
    return name, kwargs


def _check_type(key: str, value: Any, expected: str) -> None:
    if "float" in expected:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif "int" in expected:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise JudgeOptionError(key, f"expected {expected.replace(' | None', '')}, got {value!r}")


__all__ = [
    "ALIASES",
    "BACKENDS",
    "JUDGES",
    "ChatSettings",
    "Judge",
    "JudgeConfigError",
    "JudgeItem",
    "JudgeOptionError",
    "Judgment",
    "canonical_name",
    "judge_class",
    "make_judge",
    "options_from_config",
]
