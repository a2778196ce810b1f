from __future__ import annotations

import pytest

from safeeraser.eval.rouge import rouge_l


def test_reference_orientation_is_the_recall_of_the_dataset_answer():
    score = rouge_l("the red car", "a red car parked")  # LCS "red car": 2 of the dataset answer's 4 tokens
    assert score.reference_orientation == pytest.approx(0.5)
    assert score.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert rouge_l("a red car parked", "the red car").reference_orientation == pytest.approx(2 / 3)


def test_a_long_output_containing_the_answer_scores_one_but_not_in_f1():
    score = rouge_l("Sure! In the picture, a dog runs across the park.", "A dog runs.")
    assert score.reference_orientation == 1.0 and score.f1 < 0.6
    assert rouge_l("", "a dog").reference_orientation == 0.0
