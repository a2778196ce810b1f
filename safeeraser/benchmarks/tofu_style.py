"""What the TOFU-style benchmarks (FIUBench, CLEAR) share beyond truth ratios and forget quality: TOFU's model
utility over the sets each names."""
from __future__ import annotations

UTILITY_SCORES = ("probability", "rouge", "truth_ratio")  # a set's share of TOFU's model utility


def utility_of(scores: dict, parts: dict[str, tuple[str, ...]]) -> float | None:
    """TOFU's model utility: the harmonic mean of the named scores (split -> score names; `rouge` is its
    ROUGE-L recall), None when a split or score is missing (not scored by this run)."""
    # deferred: safeeraser.eval's package imports ROUGE, NLTK and scipy (~1.4 s), and the training config
    # imports the benchmark's module (and so this one) in every training process on it
    from safeeraser.eval.forget_quality import model_utility

    values = []
    for split, names in parts.items():
        for name in names:
            value = scores.get(split, {}).get(name)
            value = value.get("rougeL") if isinstance(value, dict) else value
            if value is None:
                return None
            values.append(value)
    return model_utility(values)
