"""One perturbation of the trainable weights that both programs can apply identically.

At step 0 the LoRA update is zero (B = 0) and the frozen reference equals the model, so a KL term is 0
and says nothing about how it is computed. Setting every LoRA A and B and shifting the trainable projector
by values drawn from a generator seeded by the parameter's canonical name (its layer, module and role,
not the framework's module path, which differs between transformers 4 and 5) gives both programs the same
perturbed model. Plain torch only: it runs in the reference's environment too.
"""
from __future__ import annotations

import hashlib
import re

import torch

SCALE = 0.05
_LORA = re.compile(r"layers\.(\d+)\.(self_attn|mlp)\.(\w+_proj)\.lora_([AB])\.")
_PROJECTOR = re.compile(r"multi_modal_projector\.(?:.*\.)?(linear_[12])\.(weight|bias)$")


def canonical(name: str) -> str | None:
    """`layers.0.self_attn.q_proj.lora_A` / `projector.linear_1.weight`, or None for other parameters."""
    m = _LORA.search(name)
    if m:
        return f"layers.{m[1]}.{m[2]}.{m[3]}.lora_{m[4]}"
    m = _PROJECTOR.search(name)
    if m and "original_module" not in name:
        return f"projector.{m[1]}.{m[2]}"
    return None


def _noise(key: str, shape) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1
    return SCALE * torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


@torch.no_grad()
def perturb(model) -> list[str]:
    """Perturb `model`'s trainable LoRA and projector parameters in place; return the canonical names
    touched (sorted), so both sides can check they touched the same set."""
    touched = []
    for name, p in model.named_parameters():
        key = canonical(name)
        if key is None or not p.requires_grad:
            continue
        noise = _noise(key, p.shape).to(p.dtype)
        if key.startswith("layers."):
            p.copy_(noise)
        else:
            p.add_(noise)
        touched.append(key)
    return sorted(touched)


def seed_pad_embedding(model_dir) -> None:
    """Give the saved model's pad token a non-zero input embedding (in place). A freshly built model has a
    zero pad row (nn.Embedding's padding_idx), and then zeroing pad embeddings, as transformers 4's LLaVA
    merge does, changes nothing and goes untested; a real checkpoint's pad row is not zero."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    pad = config.get("pad_token_id", config.get("text_config", {}).get("pad_token_id"))
    path = model_dir / "model.safetensors"
    tensors = load_file(str(path))
    name = next(k for k in tensors if k.endswith("embed_tokens.weight"))
    tensors[name][pad] = 20 * _noise("pad_embedding", tensors[name].shape[1:])
    save_file(tensors, str(path), metadata={"format": "pt"})
