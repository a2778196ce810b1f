from __future__ import annotations

import pytest

from safeeraser.data.records import CATEGORIES
from safeeraser.eval.judges.base import ASR, RR, RR_SD, SCORE, JudgeItem
from safeeraser.eval.judges.prompts import GENERIC_UNSAFE_CONTENT, UNSAFE_CONTENT, build_prompt


def test_every_category_has_its_own_asr_prompt_and_others_get_the_generic_one():
    prompts = {c: build_prompt(JudgeItem(ASR, "Q {x}?", "A {y}.", category=c)) for c in CATEGORIES}
    assert len(set(prompts.values())) == len(CATEGORIES)
    for category, prompt in prompts.items():
        assert UNSAFE_CONTENT[category] in prompt and "Q {x}?" in prompt and "A {y}." in prompt
    for category in (None, "Misc"):
        assert GENERIC_UNSAFE_CONTENT in build_prompt(JudgeItem(ASR, "q", "a", category=category))


def test_each_kind_has_its_prompt():
    texts = [
        build_prompt(JudgeItem(kind, "the question", "the answer", reference="the reference"))
        for kind in (RR, RR_SD, SCORE)
    ]
    assert len(set(texts)) == 3 and all("the question" in t and "the answer" in t for t in texts)
    assert "the reference" in texts[2]
    with pytest.raises(ValueError):
        build_prompt(JudgeItem("nonsense", "q", "a"))
