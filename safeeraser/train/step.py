"""One training step's loss: forward the views (fused into one pass), then the method's terms."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from safeeraser.data.encode import IGNORE_INDEX
from safeeraser.train.methods.base import Method
from safeeraser.train.methods.terms import KINDS

MODEL_INPUTS = ("input_ids", "attention_mask", "pixel_values")


@dataclass
class ViewOutput:
    logits: torch.Tensor
    labels: torch.Tensor
    ref_logits: torch.Tensor | None = None


def _pad_to(t: torch.Tensor, width: int, value) -> torch.Tensor:
    return F.pad(t, (0, width - t.shape[1]), value=value) if t.shape[1] < width else t


def fuse(views: dict[str, dict], names: list[str], pad_id: int) -> tuple[dict, dict[str, slice]]:
    """Concatenate right-padded view batches into one batch; return it and each view's rows."""
    width = max(views[n]["input_ids"].shape[1] for n in names)
    pads = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}
    fused, slices, start = {}, {}, 0
    for key, value in pads.items():
        fused[key] = torch.cat([_pad_to(views[n][key], width, value) for n in names])
    fused["pixel_values"] = torch.cat([views[n]["pixel_values"] for n in names])
    for n in names:
        rows = views[n]["input_ids"].shape[0]
        slices[n] = slice(start, start + rows)
        start += rows
    return fused, slices


def _forward(model, batch: dict) -> torch.Tensor:
    return model(**{k: batch[k] for k in MODEL_INPUTS}, use_cache=False).logits


def reference_context(model):
    """The frozen reference is the base model with the LoRA adapter disabled: no second copy."""
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrap the PeftModel
    if hasattr(inner, "disable_adapter"):
        return inner.disable_adapter()
    raise RuntimeError("this method needs a frozen reference: use LoRA (LoRA.r > 0) or pass ref_model")


def compute_loss(model, views: dict[str, dict], method: Method, cfg, pad_id: int, ref_model=None):
    """Return (total loss, {term name: detached value}) for one micro-batch."""
    names = method.views()
    outputs: dict[str, ViewOutput] = {}
    if cfg.fused_forward and len(names) > 1:
        fused, slices = fuse(views, names, pad_id)
        logits = _forward(model, fused)
        for n in names:
            # Trim each view back to its own width so per-view padding is exactly what a separate pass sees.
            w = views[n]["input_ids"].shape[1]
            outputs[n] = ViewOutput(logits[slices[n], :w], views[n]["labels"])
    else:
        for n in names:
            outputs[n] = ViewOutput(_forward(model, views[n]), views[n]["labels"])
    ref_names = method.reference_views()
    if ref_names:
        with torch.no_grad():
            ctx = contextlib.nullcontext() if ref_model is not None else reference_context(model)
            with ctx:
                net = ref_model if ref_model is not None else model
                if len(ref_names) > 1:
                    fused, slices = fuse(views, ref_names, pad_id)
                    ref_logits = _forward(net, fused)
                    for n in ref_names:
                        outputs[n].ref_logits = ref_logits[slices[n], : views[n]["input_ids"].shape[1]]
                else:
                    outputs[ref_names[0]].ref_logits = _forward(net, views[ref_names[0]])
    total = 0.0
    parts = {}
    for term in method.terms:
        value = KINDS[term.kind](outputs[term.view], cfg)
        total = total + term.weight * value
        parts[term.name] = value.detach()
    return total, parts
