"""TOFU-style metrics (safeeraser/eval/forget_quality.py) against hand computations on small cases."""
import itertools
import math

import pytest

from safeeraser.eval.forget_quality import (answer_probability, forget_quality, keyword_match, model_utility,
                                            truth_ratio_score, truth_ratios)


def test_truth_ratios_and_their_scores():
    # question 1: paraphrased loss 1.0, perturbed 2.0 and 3.0 -> exp(2.5 - 1.0); question 2: 2.0 vs 1.0
    tr = truth_ratios([1.0, 2.0], [[2.0, 3.0], [1.0]])
    assert tr.tolist() == pytest.approx([math.exp(1.5), math.exp(-1.0)])
    assert truth_ratio_score(tr, forget=True) == pytest.approx((math.exp(-1.5) + math.exp(-1.0)) / 2)
    assert truth_ratio_score(tr, forget=False) == pytest.approx((1 - math.exp(-1.5) + 0.0) / 2)
    with pytest.raises(ValueError, match="no perturbed answer"):
        truth_ratios([1.0], [[]])
    with pytest.raises(ValueError, match="2 paraphrased answers but 1"):
        truth_ratios([1.0, 2.0], [[1.0]])


def test_answer_probability_on_forget_and_elsewhere():
    assert answer_probability([0.0, math.log(2)]) == pytest.approx(0.75)
    # p = 1/2, perturbed p = 1/4 and 1/4: share 1/2
    assert answer_probability([math.log(2)], [[math.log(4), math.log(4)]]) == pytest.approx(0.5)


def _exact_ks_p(a, b) -> float:
    """P(D >= d observed) when every split of the pooled values into sizes len(a), len(b) is equally
    likely: the exact two-sample KS test, by enumeration."""
    def d(x, y):
        points = sorted(x + y)
        return max(abs(sum(v <= t for v in x) / len(x) - sum(v <= t for v in y) / len(y)) for t in points)

    pooled, observed = a + b, d(a, b)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    hits = sum(d([pooled[i] for i in s], [pooled[i] for i in range(len(pooled)) if i not in s]) >= observed - 1e-12
               for s in splits)
    return hits / len(splits)


@pytest.mark.parametrize("a, b", [([0.1, 0.2, 0.3, 0.9], [0.5, 0.6, 0.7]),
                                  ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
                                  ([0.3, 1.2, 0.8, 2.5, 0.1], [0.4, 1.1, 0.9, 2.0, 0.2])])
def test_forget_quality_is_the_exact_ks_p_value(a, b):
    fq = forget_quality(a, b)
    assert fq["p_value"] == pytest.approx(_exact_ks_p(a, b), rel=1e-9)
    assert 0 <= fq["statistic"] <= 1


def test_model_utility_is_the_harmonic_mean():
    assert model_utility([0.5, 1.0]) == pytest.approx(2 / (1 / 0.5 + 1 / 1.0))
    assert model_utility([0.5, 0.0, 0.9]) == 0.0
    with pytest.raises(ValueError):
        model_utility([0.5, -0.1])


def test_keyword_match():
    assert keyword_match("Her name is Jody Vance.", ["jody", "vance", "canada"]) == pytest.approx(2 / 3)
    assert keyword_match("nothing", ["jody"]) == 0.0
