"""TOFU-style forgetting metrics, as the benchmarks that build on TOFU compute them (FIUBench's
evaluate_util.py and aggregate_eval_stat.py, CLEAR's calculate_metrics.py), from per-token answer losses
(the mean NLL of an answer's tokens, eval/likelihood.answer_nll):

- truth ratio per question: TR = exp(mean over the perturbed answers of their loss - the paraphrased
  answer's loss), i.e. how much likelier the paraphrased true answer is than the perturbed false ones
  (per-token, a geometric mean over the perturbed answers). A set's score: on the forget set
  mean(min(TR, 1/TR)) (1: the model cannot tell true from false), elsewhere mean(max(0, 1 - 1/TR));
- answer probability: on the forget set mean(exp(-loss of the answer)); elsewhere the answer's share
  p / (p + sum of the perturbed answers' p), each p = exp(-loss);
- forget quality: the p-value of the two-sample Kolmogorov-Smirnov test between the forget set's truth
  ratios under the unlearned model and under a model trained without the forget set (scipy's ks_2samp,
  as they call it): high when the unlearned model is indistinguishable from never having learnt it;
- model utility: the harmonic mean of the non-forget metrics (scipy's hmean: 0 if any is 0)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def truth_ratios(paraphrased_losses: Sequence[float], perturbed_losses: Sequence[Sequence[float]]) -> np.ndarray:
    """Per question, exp(mean of its perturbed answers' losses - its paraphrased answer's loss)."""
    para = np.asarray(paraphrased_losses, dtype=float)
    if len(perturbed_losses) != len(para):
        raise ValueError(f"{len(para)} paraphrased answers but {len(perturbed_losses)} lists of perturbed ones")
    if any(len(p) == 0 for p in perturbed_losses):
        raise ValueError("a question has no perturbed answer: its truth ratio is undefined")
    return np.exp(np.array([np.mean(p) for p in perturbed_losses], dtype=float) - para)


def truth_ratio_values(ratios: Sequence[float], forget: bool) -> np.ndarray:
    """Each question's share of a set's truth-ratio score: min(TR, 1/TR) on the forget set, else max(0, 1 - 1/TR)."""
    tr = np.asarray(ratios, dtype=float)
    return np.minimum(tr, 1 / tr) if forget else np.maximum(0, 1 - 1 / tr)


def truth_ratio_score(ratios: Sequence[float], forget: bool) -> float:
    return float(np.mean(truth_ratio_values(ratios, forget)))


def answer_probability(losses: Sequence[float], perturbed_losses: Sequence[Sequence[float]] | None = None) -> float:
    """Forget set (no perturbed answers given): mean exp(-loss). Otherwise the mean share of the true
    answer's probability among it and its perturbed answers'."""
    p = np.exp(-np.asarray(losses, dtype=float))
    if perturbed_losses is None:
        return float(np.mean(p))
    others = np.array([np.exp(-np.asarray(q, dtype=float)).sum() for q in perturbed_losses])
    return float(np.mean(p / (p + others)))


def forget_quality(unlearned_ratios: Sequence[float], oracle_ratios: Sequence[float]) -> dict:
    """{"p_value", "statistic"} of the two-sample KS test between the two models' forget-set truth ratios."""
    from scipy.stats import ks_2samp

    if not len(unlearned_ratios) or not len(oracle_ratios):
        raise ValueError("forget quality needs truth ratios of both models")
    test = ks_2samp(np.asarray(unlearned_ratios, dtype=float), np.asarray(oracle_ratios, dtype=float))
    return {"p_value": float(test.pvalue), "statistic": float(test.statistic)}


def model_utility(values: Sequence[float]) -> float:
    """The harmonic mean of the retain-side metrics (0 when any is 0; every value must be >= 0)."""
    from scipy.stats import hmean

    v = np.asarray(values, dtype=float)
    if not v.size or (v < 0).any():
        raise ValueError(f"model utility needs metrics >= 0, got {list(values)}")
    return 0.0 if (v == 0).any() else float(hmean(v))


def keyword_match(prediction: str, keywords: Sequence[str]) -> float:
    """FIUBench's exact match: the share of the answer's keywords found in the prediction (case-insensitive)."""
    if not keywords:
        raise ValueError("no keywords to match")
    text = prediction.lower()
    return min(1.0, sum(1 / len(keywords) for k in keywords if k.lower() in text))
