"""quantize: the unlearned model's weights rounded to fewer bits, then its answers. Unlearning by small
weight changes can fall below a quantizer's step, and the knowledge come back (Zhang et al. 2024, "Catastrophic
Failure of LLM Unlearning via Quantization", arXiv 2410.16454). The merged model's language-model linear
layers are rounded as bitsandbytes stores them (its output layer kept, as bitsandbytes skips it; the vision
tower and projector kept), and computed back in the model's dtype ("fake" quantization, the same numbers
on a CPU as the formats give on a GPU):
  int8  absmax per output row, 8-bit symmetric integers (bitsandbytes' LLM.int8 weight format)
  nf4   blocks of 64 weights, absmax per block, each weight the nearest of the 16 NormalFloat4 levels
        (Dettmers et al. 2023, QLoRA)
  int4  blocks of 64 weights, absmax per block, 4-bit symmetric integers (-7..7)
The records are not changed."""
from __future__ import annotations

from statistics import NormalDist

from safeeraser.attacks.base import Attack
from safeeraser.models.families import family_of_model

BLOCK = 64
NF4_OFFSET = 0.9677083  # QLoRA's: the outermost quantile used, (1 - 1/(2*15) + 1 - 1/(2*16)) / 2


def nf4_levels() -> list[float]:
    """The 16 NormalFloat4 levels, built as QLoRA defines them: 8 quantiles of N(0, 1) above 0, 7 below, and
    0, scaled to [-1, 1]."""
    ppf = NormalDist().inv_cdf

    def spaced(n):  # n points from NF4_OFFSET down to 0.5, the last (0.5) left out
        return [NF4_OFFSET + (0.5 - NF4_OFFSET) * i / (n - 1) for i in range(n - 1)]

    positive = [ppf(p) for p in spaced(9)]
    negative = [-ppf(p) for p in spaced(8)]
    values = sorted(positive + [0.0] + negative)
    top = max(abs(v) for v in values)
    return [v / top for v in values]


def fake_quantize(weight, variant: str):
    """`weight` (out, in) rounded to the variant's format and back, in its own dtype."""
    import torch

    w = weight.float()
    if variant == "int8":
        scale = w.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
        return (torch.round(w / scale).clamp(-127, 127) * scale).to(weight.dtype)
    flat = w.reshape(-1)
    pad = (-flat.numel()) % BLOCK
    blocks = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, BLOCK)
    absmax = blocks.abs().amax(1, keepdim=True).clamp(min=1e-12)
    if variant == "int4":
        q = torch.round(blocks / absmax * 7).clamp(-7, 7) / 7
    elif variant == "nf4":
        levels = torch.tensor(nf4_levels(), dtype=blocks.dtype)
        q = levels[(blocks / absmax).unsqueeze(-1).sub(levels).abs().argmin(-1)]
    else:
        raise AssertionError(variant)
    out = (q * absmax).reshape(-1)[: flat.numel()]
    return out.reshape(weight.shape).to(weight.dtype)


class Quantize(Attack):
    name = "quantize"
    variants = ("int8", "nf4", "int4")
    paper = "Zhang et al. 2024, Catastrophic Failure of LLM Unlearning via Quantization (arXiv 2410.16454)"

    def model_transform(self, variant: str):
        self.check_variant(variant)

        def transform(model) -> int:
            """Round the language model's linear weights in place; returns how many layers were rounded."""
            import torch

            family = family_of_model(model)
            output = model.get_output_embeddings()
            done = 0
            with torch.no_grad():
                for name, module in model.named_modules():
                    if isinstance(module, torch.nn.Linear) and module is not output and family.part_of(name) == "language":
                        module.weight.copy_(fake_quantize(module.weight, variant))
                        done += 1
            return done

        return transform


ATTACK = Quantize()
