"""LoRA layers that add their update with one matrix product: no scaled copy of each layer's output.

PEFT's LoRA linear layer computes `result + lora_B(lora_A(dropout(x))) * scaling`: the B product,
its scaled copy and the sum are three tensors of the layer's output size, and the backward pass
scales the output gradient once more. One `addmm(result, h, B^T, alpha=scaling)` gives the same sum
without them; its backward scales only the rank-sized gradients. On a CPU, where those output-sized
tensors spill out of the cache, this is 8% of a tiny-model unlearning step.

The values are PEFT's up to float rounding: when `scaling` (lora_alpha / r) is a power of two, as
with the defaults (256 / 32 = 8), scaling is exact and the outputs and gradients are bit-identical
(checked in tests/train/test_lora_addmm.py); otherwise the sum is rounded once instead of twice.
Anything but a plain, unmerged, enabled LoRA layer on an `nn.Linear` (DoRA and other variants, a LoRA
bias, mixed adapter batches, mixed dtypes as under autocast, a B matrix with forward hooks such as
DeepSpeed ZeRO-3's) runs PEFT's own expression.
"""
from __future__ import annotations

import torch
from torch import nn
from peft.tuners.lora.layer import Linear as PeftLoraLinear


class AddmmLoraLinear(PeftLoraLinear):
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if (args or kwargs or self.disable_adapters or self.merged or self.lora_variant
                or type(self.base_layer) is not nn.Linear):
            return super().forward(x, *args, **kwargs)
        # x feeds the base layer and each adapter's dropout as in PEFT's forward, so that its gradient
        # gathers the same terms in the same order
        result = self.base_layer(x)
        dtype = result.dtype
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            lora_a, lora_b = self.lora_A[name], self.lora_B[name]
            h = lora_a(self.lora_dropout[name](self._cast_input_dtype(x, lora_a.weight.dtype)))
            if _plain(lora_b) and result.dtype == h.dtype == lora_b.weight.dtype:
                width = result.shape[-1]
                result = torch.addmm(result.reshape(-1, width), h.reshape(-1, h.shape[-1]), lora_b.weight.t(),
                                     alpha=self.scaling[name]).view(result.shape)
            else:
                result = result + lora_b(h) * self.scaling[name]  # PEFT's own expression
        return result.to(dtype)


def _plain(lora_b: nn.Module) -> bool:
    """Whether B's weight can be read without calling B: no bias, and no hooks that must run around its
    forward (DeepSpeed ZeRO-3 gathers a partitioned weight in one; its parameters carry a `ds_id`)."""
    return (type(lora_b) is nn.Linear and lora_b.bias is None and not lora_b._forward_pre_hooks
            and not lora_b._forward_hooks and not hasattr(lora_b.weight, "ds_id"))


def use_addmm_lora(model) -> int:
    """Make every PEFT LoRA linear layer of `model` an AddmmLoraLinear (same parameters, same state
    dict, same saved adapter: only the forward changes); return how many."""
    count = 0
    for module in model.modules():
        if type(module) is PeftLoraLinear:
            module.__class__ = AddmmLoraLinear
            count += 1
    return count
