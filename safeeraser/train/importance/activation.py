"""Modality-aware neuron importance (MANU, Liu et al. 2025): the output units of the MLP linear layers of
the vision tower and of the language model (the family's `mlp_neurons`), scored by statistics of their
activations on the forget inputs against the retain inputs. Per neuron and view, over its activations a:
mean |a| ("abs"), the share of |a| > `active` ("freq"), their standard deviation ("var": MANU's name for
it; the population deviation) and root mean square ("rms"). The score sums, over the four, the method's
weights (w_abs, w_freq, w_var, w_rms; MANU's 2, 0, 2, 2) times I_forget / (I_retain + 1e-5) - 1.

Which activations each modality is read on: a vision neuron on every patch of the view's images, a
language neuron on the view's text tokens after the image (the question, the template's markers and the
answer; MANU reads its language neurons on text-only prompts, which the benchmark's image-question pairs
do not have). Sums are kept per neuron (five vectors), so the pass costs forward passes and no copy of any
weight; its sums are added over the processes."""
from __future__ import annotations

import math

import torch

from safeeraser.data.encode import model_inputs
from safeeraser.train.importance.base import Importance, ScoringPass

RATIO_EPS = 1e-5  # MANU's, in each statistic's ratio
STATISTICS = ("abs", "freq", "var", "rms")


class NeuronSums:
    """Per neuron of one module, over the activations it was shown: count, sum |a|, count of |a| > active,
    sum a, sum a^2 (float64: the square sums of many tokens)."""

    def __init__(self, width: int, device):
        self.sums = torch.zeros(5, width, dtype=torch.float64, device=device)

    def add(self, a: torch.Tensor, active: float) -> None:
        a = a.detach().double()
        self.sums[0] += a.shape[0]
        self.sums[1] += a.abs().sum(0)
        self.sums[2] += (a.abs() > active).double().sum(0)
        self.sums[3] += a.sum(0)
        self.sums[4] += a.square().sum(0)

    def statistics(self) -> dict[str, torch.Tensor]:
        n, s_abs, s_on, s, s2 = self.sums
        n = n.clamp(min=1)
        mean, mean_sq = s / n, s2 / n
        return {"abs": s_abs / n, "freq": s_on / n, "var": (mean_sq - mean.square()).clamp(min=0).sqrt(),
                "rms": mean_sq.sqrt()}


def neuron_statistics(p: ScoringPass, view: str, neurons: dict[str, str]) -> dict[str, dict[str, torch.Tensor]]:
    """{module name: {statistic: vector}} of the modules in `neurons` ({name: part}) on `view`."""
    from safeeraser.train.step import image_token_id, text_after_image

    modules = dict(p.model.named_modules())
    active = float(p.args["active"])
    sums = {n: NeuronSums(modules[n].out_features, modules[n].weight.device) for n in neurons}
    text = {}  # the current batch's text-token mask, read by the language hooks

    def hook_for(name):
        def hook(module, args, output):
            a = output if neurons[name] == "vision" else output[text["mask"]]
            sums[name].add(a.reshape(-1, a.shape[-1]), active)
        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in neurons]
    try:
        with torch.no_grad():
            for views in p.batches():
                batch = views[view]
                text["mask"] = text_after_image(batch, image_token_id(p.model))
                with p.autocast():
                    p.model(**model_inputs(batch), use_cache=False, logits_to_keep=1)
    finally:
        for h in handles:
            h.remove()
    return {n: _totalled(s, p) for n, s in sums.items()}


def _totalled(s: NeuronSums, p: ScoringPass) -> dict[str, torch.Tensor]:
    s.sums = p.total(s.sums)
    return s.statistics()


def neuron_scores(forget: dict[str, torch.Tensor], retain: dict[str, torch.Tensor], weights: dict) -> torch.Tensor:
    """MANU's score of each neuron from its statistics on the forget and the retain inputs."""
    score = torch.zeros_like(forget["abs"])
    for k in STATISTICS:
        if weights[k]:
            score += weights[k] * (forget[k] / (retain[k] + RATIO_EPS) - 1)
    return score


def modality_scores(p: ScoringPass) -> dict[str, torch.Tensor]:
    neurons = p.family.mlp_neurons(p.model.named_modules())
    weights = {k: float(p.args[f"w_{k}"]) for k in STATISTICS}
    forget = neuron_statistics(p, "forget", neurons)
    retain = neuron_statistics(p, "retain", neurons)
    return {n: neuron_scores(forget[n], retain[n], weights) for n in neurons}


def top_neurons(scores: dict[str, torch.Tensor], parts: dict[str, str], ratio: float) -> dict[str, torch.Tensor]:
    """The indices of the highest-scoring `ratio` of the neurons of each part (modality), at least one
    per part: {module name: indices}. Ties go to the module listed first, then the lower index."""
    chosen = {}
    for part in sorted(set(parts.values())):
        names = [n for n in scores if parts[n] == part]
        flat = torch.cat([scores[n].flatten() for n in names])
        k = max(1, math.floor(ratio * flat.numel()))
        top = torch.sort(flat, descending=True, stable=True).indices[:k]
        start = 0
        for n in names:
            width = scores[n].numel()
            mine = top[(top >= start) & (top < start + width)] - start
            if mine.numel():
                chosen[n] = torch.sort(mine).values
            start += width
    return chosen


def select_top(scores: dict[str, torch.Tensor], p: ScoringPass) -> dict[str, torch.Tensor]:
    return top_neurons(scores, p.family.mlp_neurons(p.model.named_modules()), float(p.args["ratio"]))


IMPORTANCE = Importance("activation", modality_scores, select_top)
