"""Fisher saliency (MMUnlearner, Huo et al. 2025): per weight, the diagonal empirical Fisher information
of the forget set against that of the retain set. F_v = sum over the micro-batches of view v of the squared
gradient of their mean answer NLL. MMUnlearner selects the weights whose ratio (F_forget + eps) /
(F_retain + eps) is at least `threshold`; the score here is the margin F_forget - threshold * F_retain,
which selects the same weights (margin >= (threshold - 1) * eps) with one accumulator instead of two: the
pass holds one float32 copy of the trainable weights besides their gradients, and frees it once the
mask is made."""
from __future__ import annotations

import torch

from safeeraser.train.importance.base import Importance, ScoringPass

EPS = 1e-15  # MMUnlearner's, added to both Fisher sums


def squared_gradients(p: ScoringPass, view: str, sums: dict[str, torch.Tensor], weight: float) -> None:
    """Add `weight` times the squared gradient of each micro-batch's mean answer NLL on `view` to `sums`."""
    params = {n: q for n, q in p.model.named_parameters() if n in sums}
    for views in p.batches():
        p.model.zero_grad(set_to_none=True)
        p.answer_nll(view, views[view]).backward()
        for name, q in params.items():
            if q.grad is not None:
                sums[name].add_(q.grad.detach().float().square(), alpha=weight)
    p.model.zero_grad(set_to_none=True)


def fisher_margin(p: ScoringPass) -> dict[str, torch.Tensor]:
    threshold = float(p.args["threshold"])
    sums = {n: torch.zeros_like(q, dtype=torch.float32) for n, q in p.model.named_parameters() if q.requires_grad}
    squared_gradients(p, "forget", sums, 1.0)
    squared_gradients(p, "retain", sums, -threshold)
    # popped as they are totalled: reduce returns a new tensor, and the pass never holds two of each
    return {n: p.total(sums.pop(n)) for n in list(sums)}


def selected(margin: torch.Tensor, threshold: float) -> torch.Tensor:
    """The weights whose Fisher ratio (F_forget + EPS) / (F_retain + EPS) is at least `threshold`."""
    return margin >= (threshold - 1) * EPS


IMPORTANCE = Importance("fisher", fisher_margin,
                        lambda scores, p: {n: selected(m, float(p.args["threshold"])) for n, m in scores.items()})
