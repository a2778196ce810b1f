"""The reference's judge (`openai`, the default): GPT-4o-style prompts to any chat model.

Rates: ASR, RR, SARR and GPT-Eval (the only preset that grades UnharmPair answers, and MM-Vet).
Prompts: prompts.py, or with templates="reference" the SafeEraser code's own, read from the user's
checkout (sent after its system message, with its model, temperature and length left to the API's
defaults, and read by its substring rules). Backends: server (the OpenAI API or any OpenAI-compatible endpoint; needs an
API key), hf or vllm (any local chat model, through its own chat template).
"""

from __future__ import annotations

from functools import partial

from safeeraser.eval.judges.asker import Ask
from dataclasses import replace

from safeeraser.eval.judges.base import ASR, RR, RR_SD, SCORE, JudgeConfigError, JudgeItem
from safeeraser.eval.judges import JudgeOptionError
from safeeraser.eval.judges.parsing import parse_choice, parse_score
from safeeraser.eval.judges.preset import EMPTY_ANSWER, JudgeOptions, PresetJudge
from safeeraser.eval.reference_rules import reference_label
from safeeraser.reference.checkout import CheckoutError
from safeeraser.reference.judge_templates import load_reference_templates
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
    has_reference_templates = True  # templates="reference" (see __init__)

    def __init__(self, options: JudgeOptions | None = None, cache_path=None):
        options = options or JudgeOptions()
        self.reference = None
        if options.templates == "reference":
            if not options.reference_dir:
                raise JudgeOptionError("reference_dir", "templates=reference reads the prompts from a checkout "
                                                        "of the SafeEraser repository: give its folder")
            try:
                self.reference = load_reference_templates(options.reference_dir)
            except CheckoutError as exc:
                raise JudgeOptionError("reference_dir", str(exc)) from None
            self.prompt_version = "reference-" + self.reference.digest[:16]
            self.default_model = self.reference.model
            self.max_tokens = None
            options = replace(options, settings=replace(options.settings, temperature=None))
        elif options.templates != "ours":
            raise JudgeOptionError("templates", f"{options.templates!r}; choose ours or reference")
        super().__init__(options, cache_path)

    def ask_for(self, item: JudgeItem) -> Ask:
        if self.reference is not None:
            return self._reference_ask(item)
        parse = parse_score if item.kind == SCORE else partial(parse_choice, options=CHOICES[item.kind])
        return Ask(build_prompt(item), parse)

    def _reference_ask(self, item: JudgeItem) -> Ask:
        ref = self.reference
        if item.kind == SCORE:
            # The reference's argument order: the model's answer is its "correct answer", the dataset's
            # answer its "prediction" (docs/reference-mode.md)
            prompt = ref.score_prompt(item.question.strip(), item.answer.strip(), (item.reference or "").strip())
        elif item.kind == ASR:
            if item.category not in ref.asr:
                raise JudgeConfigError(f"the reference's templates have no ASR template for category "
                                       f"{item.category!r} (its eval_all.py fails on such an image folder); "
                                       f"categories: {', '.join(sorted(ref.asr))}")
            prompt = ref.asr[item.category].format(prediction=item.answer)
        else:
            prompt = (ref.rr if item.kind == RR else ref.rr_sd).format(prediction=item.answer)
        messages = [{"role": "system", "content": ref.system}, {"role": "user", "content": prompt}]
        parse = parse_score if item.kind == SCORE else partial(reference_label, item.kind)
        return Ask(prompt, parse, messages=messages)

    def needs_no_judge(self, item: JudgeItem) -> bool:
        if self.reference is None:
            return super().needs_no_judge(item)
        # The reference asks about a blank answer; it skips only the empty string, and a harmless pair
        # with an empty question, answer or dataset answer
        if item.kind == SCORE:
            return not (item.question.strip() and item.answer.strip() and (item.reference or "").strip())
        return item.answer == ""

