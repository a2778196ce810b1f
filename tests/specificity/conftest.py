"""Shared by the specificity tests: the fixture folder, answers to its questions chosen to exercise
each scoring rule, and a fake predict_fn that answers from that table."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# question id -> the model's answer, per benchmark (ids as the loaders make them from the fixtures).
ANSWERS = {
    "gqa": {"201": "Red.", "202": "no", "203": "A circle", "204": "dogs"},
    "vqav2": {"1001": "Two", "1002": "A laptop.", "1003": "T-Shirt", "1004": "yes"},
    "vizwiz": {"VizWiz_val_00000000.jpg": "Unanswerable.", "VizWiz_val_00000001.jpg": "Blue",
               "VizWiz_val_00000002.jpg": "three", "VizWiz_val_00000003.jpg": "unanswerable"},
    "sqa": {"1": "B", "2": "The answer is A.", "5": "frog"},
    "pope": {"random-1": "Yes", "random-2": "No, there is not.", "random-3": "No.", "random-4": "There is no tree.",
             "adversarial-1": "yes", "adversarial-2": "Yes, there is.", "adversarial-3": "yes",
             "adversarial-4": "I do not see one."},
    # MMBench ids: TSV index + round * 1,000,000.
    "mmbench": {"0": "red", "1000000": "red", "2000000": "red", "3000000": "red",  # free-form, right each round
                "1": "B", "1000001": "B",  # same letter after the options rotated: wrong in round 1
                "2": "three", "1000002": "three", "2000002": "C"},  # round 2's gold is A
    "mmvet": {"v1_0": "The square is red.", "v1_1": "There are two dots."},
}


def benchmark_of(request) -> str:
    """Question ids repeat across benchmarks; the image's folder tells which one asks."""
    return next(part for part in reversed(request.image.parts) if part in ANSWERS)


class FakePredict:
    """Answers from ANSWERS ("yes" for an unknown id) and records every call."""

    def __init__(self):
        self.calls: list[list] = []

    def __call__(self, requests):
        self.calls.append(list(requests))
        return [ANSWERS[benchmark_of(r)].get(r.question_id, "yes") for r in requests]

    @property
    def asked(self) -> list[str]:
        return [r.question_id for call in self.calls for r in call]


@pytest.fixture
def fixture_root() -> Path:
    return FIXTURES


@pytest.fixture
def fixture_copy(tmp_path) -> Path:
    """A writable copy of the fixture folder, for tests that add or break files."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "data"))


@pytest.fixture
def answers() -> dict[str, dict[str, str]]:
    return ANSWERS


@pytest.fixture
def fake_predict() -> FakePredict:
    return FakePredict()
