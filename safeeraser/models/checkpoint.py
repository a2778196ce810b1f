"""Apply an unlearned checkpoint to a base model: a PEFT adapter folder, a full model folder, or the
reference's `checkpoint.pt` (every trainable parameter, torch.save'd). Loading is strict: a key
that does not match is an error that names it, never a silent skip."""
from __future__ import annotations

import re
from pathlib import Path

import torch


class CheckpointError(ValueError):
    pass


def _strict_compare(expected: set[str], got: set[str], source: str) -> None:
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{source}: checkpoint does not match the model: " + ", ".join(parts))


def load_adapter(model, adapter_dir: str | Path):
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"{adapter_dir}: no adapter_model.safetensors")
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    saved = load_file(str(weights))
    expected = get_peft_model_state_dict(model)
    _strict_compare(set(expected), set(saved), str(weights))
    for k, v in saved.items():  # the values really landed
        if not torch.equal(expected[k].to(v.dtype).cpu(), v):
            raise CheckpointError(f"{weights}: weight '{k}' was not loaded into the model")
    return model


def _normalise_reference_key(key: str, family) -> str:
    """One name per parameter whatever wrote it: DeepSpeed/DDP prefixes, PEFT wrappers and adapter
    names, and the family's older module names are all folded away."""
    key = re.sub(r"^(module\.)+", "", key)
    key = re.sub(r"^base_model\.model\.", "", key)
    for pattern, repl in family.legacy_keys:
        key = re.sub(pattern, repl, key)
    key = re.sub(r"\.(lora_[AB])\.default\.", r".\1.", key)
    return key.replace(".modules_to_save.default.", ".")


def load_reference_checkpoint(model, path: str | Path, lora_alpha: int = 256):
    """The reference's checkpoint.pt: LoRA A/B matrices and full copies of the tuned modules."""
    from peft import LoraConfig, get_peft_model

    from safeeraser.models.families import family_of_model

    family = family_of_model(model)
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (the reference's checkpoint.pt)")
    state = {_normalise_reference_key(k, family): v for k, v in state.items()}
    lora_a = {k: v for k, v in state.items() if ".lora_A." in k}
    if lora_a:
        r = next(iter(lora_a.values())).shape[0]
        targets = sorted({re.sub(r"\.lora_A\..*$", "", k).rsplit(".", 1)[-1] for k in lora_a})
        projector = any(family.part_of(k) == "projector" for k in state)
        cfg = LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=0.0, bias="none",
                         target_modules=family.lora_targets(targets),
                         modules_to_save=family.modules_to_save(False, True) if projector else None)
        model = get_peft_model(model, cfg)
        own = {}
        for name, _ in model.named_parameters():
            short = _normalise_reference_key(name, family)
            if ".lora_" in short or (projector and family.part_of(short) == "projector"
                                     and ".original_module." not in name):
                own[short] = name
        _strict_compare(set(own), set(state), str(path))
        params = dict(model.named_parameters())
        with torch.no_grad():
            for short, name in own.items():
                params[name].copy_(state[short].to(params[name].dtype))
        return model
    params = dict(model.named_parameters())
    # Without LoRA the checkpoint holds some of the model's own parameters: each must exist.
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise CheckpointError(f"{path}: checkpoint does not match the model: {len(unknown)} unexpected "
                              f"(e.g. {unknown[0]})")
    with torch.no_grad():
        for k, v in state.items():
            params[k].copy_(v.to(params[k].dtype))
    return model


def apply_checkpoint(model_path: str, checkpoint_path: str | None, dtype: str = "auto", merge: bool = True,
                     reference_lora_alpha: int = 256):
    """The model to generate with: base, plus the checkpoint if given, merged for speed. A reference
    checkpoint.pt does not record LoRA alpha: it is `reference_lora_alpha` (the reference's 256)."""
    from safeeraser.models.loading import load_model

    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and not ckpt.exists():
        raise CheckpointError(f"checkpoint '{ckpt}' not found")
    if ckpt is not None and ckpt.is_dir() and (ckpt / "config.json").exists() and \
            not (ckpt / "adapter_config.json").exists():
        return load_model(str(ckpt), dtype)  # a full fine-tune saved as a model folder
    model = load_model(model_path, dtype)
    if ckpt is None:
        return model
    if ckpt.is_dir():
        model = load_adapter(model, ckpt)
    elif ckpt.suffix in (".pt", ".bin", ".pth"):
        model = load_reference_checkpoint(model, ckpt, lora_alpha=reference_lora_alpha)
    else:
        raise CheckpointError(f"checkpoint '{ckpt}': expected an adapter folder, a model folder or a .pt file")
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


def load_for_generation(model_path: str, checkpoint_path: str | None, dtype: str = "auto",
                        reference_lora_alpha: int = 256):
    """apply_checkpoint, merged, on the GPU when there is one: what every generating command runs."""
    model = apply_checkpoint(model_path, checkpoint_path, dtype, reference_lora_alpha=reference_lora_alpha)
    if torch.cuda.is_available():
        model.to("cuda")
    return model
