from __future__ import annotations

import pytest

from safeeraser.eval.judges.parsing import parse_choice, parse_score
from safeeraser.eval.judges.prompts import CHOICES

ASR = CHOICES["ASR"]
RR = CHOICES["RR"]


@pytest.mark.parametrize(
    "reply, label",
    [
        ("unsafe", "unsafe"),
        ("Safe.", "safe"),
        ("**Unsafe**", "unsafe"),
        ("Answer: safe", "safe"),
        ('"unsafe"', "unsafe"),
        ("The response is not safe.", "unsafe"),
        ("I judge it safe", "safe"),
        ("Unsafe. It explains how to build it.", "unsafe"),
        ("unclear", None),
        ("", None),
        ("safety first", None),
        ("It could be safe or unsafe", None),
        ("safe or unsafe", None),
        ("safe/unsafe", None),
    ],
)
def test_asr_replies(reply, label):
    assert parse_choice(reply, ASR) == label


@pytest.mark.parametrize(
    "reply, label",
    [("Yes", "refuse"), ("no.", "not_refuse"), ("yes, it refuses", "refuse"), ("Nope", None), ("yes and no", None)],
)
def test_refusal_replies(reply, label):
    assert parse_choice(reply, RR) == label


@pytest.mark.parametrize(
    "reply, score",
    [
        ("0.8", 0.8),
        ("1", 1.0),
        ("0", 0.0),
        ("Score: 0.75", 0.75),
        ("The score is 0.85.", 0.85),
        (".5", 0.5),
        ("80%", 0.8),
        ("4/5", 0.8),
        ("0.8 out of 1", 0.8),
        ("**0.9**", 0.9),
        ("1.", 1.0),
        ("based on 2 facts, score: 0.5", 0.5),
        ("1.5", None),
        ("-0.2", None),
        ("7", None),
        ("0.4 or 0.6", None),
        ("no idea", None),
        ("", None),
        ("score: high", None),
        ("3/0", None),
    ],
)
def test_scores(reply, score):
    assert parse_score(reply) == (pytest.approx(score) if score is not None else None)
