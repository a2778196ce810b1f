"""What an importance function is: scores over weights or neurons from a pass over forget and retain
batches, made in the training loop's process(es) before the first optimizer step (train/localize.py)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from safeeraser.train.methods.base import Term


@dataclass
class ScoringPass:
    """What an importance function reads: the model being trained (on its device, before accelerate wraps
    it), this process's share of the training batches (each a dict of view batches), the method and its
    resolved arguments, and `total`, which sums a tensor over the processes (every process then holds the
    same scores, so every process restricts the same weights)."""

    model: torch.nn.Module
    batches: Callable[[], Iterable[dict]]
    method: object  # train.methods.base.Method
    args: dict
    cfg: object
    pad_id: int
    family: object
    total: Callable[[torch.Tensor], torch.Tensor]
    autocast: Callable = None  # the accelerator's autocast context (mixed precision), called with no argument

    def answer_nll(self, view: str, batch: dict) -> torch.Tensor:
        """The mean answer NLL of one view's batch, as the training step computes it (the method's prompt
        encoding and answer window, under the run's autocast)."""
        from safeeraser.train.step import compute_loss

        one_view = replace(self.method, terms=(Term("importance", view, "nll", 1.0),), phase_of_epoch=None)
        with self.autocast():
            loss, _ = compute_loss(self.model, {view: batch}, one_view, self.cfg, self.pad_id, self.family)
        return loss


@dataclass(frozen=True)
class Importance:
    name: str
    # What `score` returns, by the target its registry line names: for "weights", one score per element of
    # every trainable parameter ({parameter name: tensor of its shape}); for "neurons", one score per
    # output unit of the family's MLP linear layers ({module name: vector})
    score: Callable[[ScoringPass], dict[str, torch.Tensor]]
    # What the scores select, given the pass (its method arguments): for "weights", {parameter name: bool
    # tensor, True where the weight may change}; for "neurons", {module name: indices of its chosen units}
    select: Callable[[dict, ScoringPass], dict[str, torch.Tensor]]
