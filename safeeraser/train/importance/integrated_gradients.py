"""Neuron paths (MIP-Editor, Li et al. 2025): the units of every MLP (the inputs of its output projection:
down_proj, fc2) scored by how much they carry the forget answers, layer by layer, and per modality as
MIP-Editor scores them.

Language units: integrated gradients (Sundararajan et al. 2017) of the forget answers' log-likelihood
(minus their mean answer NLL) with respect to the layer's units, on the straight path from zero to their
activations h: IG = h * mean over k = 1..`ig_steps` of the gradient at (k / ig_steps) * h, the other
layers as they are; summed over the text tokens after the image and over the forget examples.
Vision units: MIP-Editor's cheaper score for the vision tower, the squared z-score over a layer's units
of the mean |gradient| at their activations (one backward per batch for every vision layer; a layer the
answers do not depend on, such as the last layer of a tower read at its second-to-last, gets none).

Each MLP's top `per_layer` units are selected (MIP-Editor: 5), among the MLPs of the tuned parts that
can change the method's loss (with RMU's loss at layer L, the language layers up to L: a later layer's
units would train nothing, and under DDP a parameter that gets no gradient is an error). Memory: the pass holds one batch's
activations of one layer and per-unit sums; it copies no weight. Cost: `ig_steps` forward and backward
passes (from the scored layer on) per language layer and batch."""
from __future__ import annotations

import torch

from safeeraser.train.importance.base import Importance, ScoringPass


def integrated_gradients(p: ScoringPass, out_proj: torch.nn.Module, steps: int) -> torch.Tensor:
    """Per unit (input of `out_proj`), the integrated gradients of the forget answers' log-likelihood,
    summed over the text tokens after the image of every forget example."""
    from safeeraser.train.step import image_token_id, text_after_image

    total = torch.zeros(out_proj.in_features, dtype=torch.float64, device=out_proj.weight.device)
    state: dict = {}

    def scale(module, args):
        h = args[0].detach()
        state["h"] = h
        state["s"] = (h * state["alpha"]).requires_grad_(True)  # the path point; the layers before stay as they are
        return (state["s"], *args[1:])

    handle = out_proj.register_forward_pre_hook(scale)
    try:
        for views in p.batches():
            batch = views["forget"]
            text = text_after_image(batch, image_token_id(p.model))
            grads = 0
            for k in range(1, steps + 1):
                state["alpha"] = k / steps
                (g,) = torch.autograd.grad(-p.answer_nll("forget", batch), state["s"])
                grads = grads + g.double()
            ig = state["h"].double() * grads / steps  # (B, T, units)
            total += (ig * text.unsqueeze(-1)).sum((0, 1))
    finally:
        handle.remove()
    return p.total(total)


def gradient_zscores(p: ScoringPass, out_projs: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Per vision MLP (by the name of its output projection), the squared z-score over its units of the
    mean |gradient| of the forget answers' log-likelihood at the units' activations."""
    sums = {n: torch.zeros(m.in_features, dtype=torch.float64, device=m.weight.device) for n, m in out_projs.items()}
    counts = {n: torch.zeros((), dtype=torch.float64, device=m.weight.device) for n, m in out_projs.items()}
    seen: dict = {}

    def keep(name):
        def hook(module, args):
            args[0].retain_grad()
            seen[name] = args[0]
        return hook

    handles = [m.register_forward_pre_hook(keep(n)) for n, m in out_projs.items()]
    try:
        for views in p.batches():
            p.model.zero_grad(set_to_none=True)
            (-p.answer_nll("forget", views["forget"])).backward()
            for n, h in seen.items():
                if h.grad is None:  # a layer the answer does not depend on (LLaVA reads the tower's second-to-last layer)
                    continue
                g = h.grad.reshape(-1, h.shape[-1]).double()
                sums[n] += g.abs().sum(0)
                counts[n] += g.shape[0]
            seen.clear()
    finally:
        for h in handles:
            h.remove()
        p.model.zero_grad(set_to_none=True)
    out = {}
    for n in out_projs:
        count = p.total(counts[n])
        if count == 0:
            continue  # never reached: none of its units carries the answer
        mean = p.total(sums[n]) / count
        out[n] = ((mean - mean.mean()) / mean.std(unbiased=False).clamp(min=1e-30)).square()
    return out


def _language_reach(p: ScoringPass, modules: dict) -> set[str]:
    """The language MLPs the method's loss depends on: all, or those of the layers up to the one a hidden
    state loss reads (method_args.layer)."""
    from safeeraser.train.step import decoder_layers, hidden_layer

    layers = decoder_layers(p.model, p.family)
    last = len(layers) - 1
    if p.method.hidden_views():
        last = next(i for i, layer in enumerate(layers) if layer is hidden_layer(p.model, p.args, p.family))
    inside = {id(m): i for i, layer in enumerate(layers) for m in layer.modules()}
    return {n for n, m in modules.items() if n.endswith(".mlp") and inside.get(id(m), last + 1) <= last}


def unit_scores(p: ScoringPass) -> dict[str, torch.Tensor]:
    """{MLP module name: per-unit score}."""
    modules = dict(p.model.named_modules())
    # only the MLPs whose input rows train (the tuned parts) and can change the method's loss: a loss on
    # a language layer's activations (RMU's) reads no layer after it
    reach = _language_reach(p, modules)
    units = {mlp: u for mlp, u in p.family.mlp_units(modules.items()).items()
             if all(modules[i].weight.requires_grad for i in u[2]) and (u[0] == "vision" or mlp in reach)}
    steps = int(p.args["ig_steps"])
    scores = {mlp: integrated_gradients(p, modules[out], steps)
              for mlp, (part, out, _) in units.items() if part == "language"}
    vision = {out: modules[out] for part, out, _ in units.values() if part == "vision"}
    by_out = gradient_zscores(p, vision) if vision else {}
    scores.update({mlp: by_out[out] for mlp, (part, out, _) in units.items() if part == "vision" and out in by_out})
    return scores


def top_per_layer(scores: dict[str, torch.Tensor], p: ScoringPass) -> dict[str, torch.Tensor]:
    """Each MLP's `per_layer` highest-scoring units (ties: the lower index), sorted."""
    k = int(p.args["per_layer"])
    return {n: torch.sort(torch.sort(s, descending=True, stable=True).indices[:k]).values for n, s in scores.items()}


IMPORTANCE = Importance("integrated_gradients", unit_scores, top_per_layer)
