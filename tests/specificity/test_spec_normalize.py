"""The VQA answer normalisation and VQA accuracy, against cases worked out by hand."""
import pytest

from safeeraser.specificity.normalize import normalize_answer
from safeeraser.specificity.vqa_accuracy import score_vqa_rows, vqa_accuracy


@pytest.mark.parametrize("raw, normalised", [
    ("Two", "2"),                          # number words become digits
    ("none", "0"),
    ("ten apples", "10 apples"),
    ("The dog", "dog"),                    # articles dropped
    ("a man and an apple", "man and apple"),
    ("Yes.", "yes"),                       # final period dropped
    ("3.5", "3.5"),                        # a decimal point stays
    ("2,000", "2000"),                     # a digit-grouping comma deletes punctuation outright
    ("black-and-white", "black and white"),  # elsewhere a mark separates words
    ("hello , world", "hello world"),      # a mark touching a space is deleted
    ("yes!", "yes"),
    ("(a) cat", "cat"),
    ("dont", "don't"),                     # contractions get their apostrophe back
    ("couldntve", "couldn't've"),
    ("well", "well"),                      # ...but not when that would rewrite an ordinary word
    ("shed", "shed"),
    ("  Unanswerable.\n", "unanswerable"),
])
def test_normalize_answer(raw, normalised):
    assert normalize_answer(raw) == normalised


def test_vqa_accuracy_counts_other_humans_over_three_leaving_each_out():
    # "two" normalises to "2": three humans said 2, seven said 3. Leaving out one of the three "2"s
    # leaves two matches (2/3); leaving out a "3" leaves three (capped at 1).
    humans = ["2", "2", "two"] + ["3"] * 7
    assert vqa_accuracy("Two", humans) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)
    # One matching human out of ten: 1/3 when any other is left out, 0 when it is.
    assert vqa_accuracy("cat", ["cat"] + ["dog"] * 9) == pytest.approx(9 * (1 / 3) / 10)
    assert vqa_accuracy("bird", ["cat"] * 10) == 0.0
    assert vqa_accuracy("cat", ["cat"] * 10) == 1.0


def test_vqa_accuracy_articles_and_punctuation_on_both_sides():
    humans = ["the laptop", "laptop"] + ["computer"] * 8
    # "A laptop." and "the laptop" both normalise to "laptop": two humans match.
    assert vqa_accuracy("A laptop.", humans) == pytest.approx((2 * 1 / 3 + 8 * 2 / 3) / 10)


def test_unanswerable_is_an_answer_like_any_other():
    humans = ["unanswerable"] * 6 + ["bottle"] * 3 + ["unsuitable"]
    assert vqa_accuracy("Unanswerable.", humans) == 1.0
    # Three humans said bottle: two left when one of them is left out, three otherwise.
    assert vqa_accuracy("bottle", humans) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)
    # One human said unsuitable: it counts 1/3 whenever another human is the one left out.
    assert vqa_accuracy("unsuitable", humans) == pytest.approx(9 * (1 / 3) / 10)


def test_score_vqa_rows_averages_overall_and_per_answer_type():
    rows = [{"answer": "yes", "human_answers": ["yes"] * 10, "answer_type": "yes/no"},
            {"answer": "no", "human_answers": ["yes"] * 10, "answer_type": "yes/no"},
            {"answer": "3", "human_answers": ["three"] * 10, "answer_type": "number"}]
    scores = score_vqa_rows(rows)
    assert scores["score"] == pytest.approx(100 * 2 / 3)
    assert scores["per_answer_type"] == {"number": 100.0, "yes/no": 50.0}


def test_vqa_accuracy_needs_human_answers():
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])
