"""Restrictions on what training may change, applied from importance scores (train/localize.py).

`WeightMask`: elements of trainable weights that must not change. Their gradients are zeroed by a tensor
hook, which runs before DDP's all-reduce and before clipping (the clipped norm is the norm of the update
that is applied). AdamW then gives them no update bit for bit (zero moments: 0 / (0 + eps) = 0), but its
decoupled weight decay would still shrink them: the masked parameters sit in an AdamW group without decay
and the decay is applied to their unmasked elements by an optimizer pre-step hook, the same product AdamW
computes (p * (1 - lr * wd)) before its update.

`prune_neurons`: zero the output rows (weight and bias) of chosen neurons. `unit_rows`: the keep masks that
let only chosen MLP units train (their input rows)."""
from __future__ import annotations

import torch


class WeightMask:
    def __init__(self, model: torch.nn.Module, keep: dict[str, torch.Tensor]):
        """`keep`: {parameter name: bool tensor of its shape, True where the weight may change}."""
        params = dict(model.named_parameters())
        for n, m in keep.items():
            if not bool(m.any()):  # nothing of it may change: frozen outright, no hook, no optimizer state
                params[n].requires_grad_(False)
        self.masks = {params[n]: m.to(params[n].device) for n, m in keep.items() if m.any() and not m.all()}
        self.handles = [p.register_hook(lambda g, m=m: g * m) for p, m in self.masks.items()]

    def __bool__(self) -> bool:
        return bool(self.masks)

    def frozen_count(self) -> int:
        return sum(int((~m).sum()) for m in self.masks.values())

    def optimizer_groups(self, groups: list[dict]) -> list[dict]:
        """AdamW's groups with the masked parameters moved out of any decaying group into groups of their
        own without decay, which carry the decay the mask applies (`masked_weight_decay`)."""
        out = []
        for g in groups:
            masked = [p for p in g["params"] if p in self.masks]
            rest = [p for p in g["params"] if p not in self.masks]
            if not masked or not g.get("weight_decay"):
                out.append(g)
                continue
            if rest:
                out.append({**g, "params": rest})
            out.append({**g, "params": masked, "weight_decay": 0.0, "masked_weight_decay": g["weight_decay"]})
        return out

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Decay the unmasked elements of the masked parameters before each step of `optimizer` (built
        from `optimizer_groups`). The hook reads the optimizer's groups at step time: accelerate's wrapper
        replaces the group dicts (load_state_dict) and the scheduler sets the lr in the current ones."""
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.decay_masked(opt))

    @torch.no_grad()
    def decay_masked(self, optimizer) -> None:
        for group in optimizer.param_groups:
            wd = group.get("masked_weight_decay")
            if not wd:
                continue
            for p in group["params"]:
                if p.grad is None:  # AdamW skips a parameter without gradient, decay included
                    continue
                # in the parameter's dtype as AdamW's p.mul_(1 - lr * wd) computes it (an fp32 factor)
                p.mul_(torch.where(self.masks[p], 1 - group["lr"] * wd, 1.0))


@torch.no_grad()
def prune_neurons(model: torch.nn.Module, chosen: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Zero the output rows of the `chosen` neurons ({linear module name: indices}); returns the keep
    masks ({parameter name: bool}) that hold them at zero if the model trains afterwards."""
    modules = dict(model.named_modules())
    keep = {}
    for name, rows in chosen.items():
        module = modules[name]
        for pname in ("weight", "bias"):
            param = getattr(module, pname, None)
            if param is None:
                continue
            param[rows.to(param.device)] = 0
            mask = torch.ones_like(param, dtype=torch.bool)
            mask[rows.to(param.device)] = False
            keep[f"{name}.{pname}"] = mask
    return keep


def unit_rows(model: torch.nn.Module, units: dict, chosen: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep masks ({parameter name: bool}) over every trainable parameter that let only the `chosen` units
    ({MLP module name: unit indices}) train: their rows in the MLP's input projections (`units`: the
    family's mlp_units), weight and bias; everything else stays as it is."""
    keep = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in model.named_parameters() if p.requires_grad}
    for mlp, rows in chosen.items():
        for proj in units[mlp][2]:
            for pname in ("weight", "bias"):
                if f"{proj}.{pname}" in keep:
                    keep[f"{proj}.{pname}"][rows] = True
    return keep
