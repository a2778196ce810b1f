"""Apply an unlearned checkpoint to a base model: a PEFT adapter folder, a full model folder, or the
reference's `checkpoint.pt` (every trainable parameter, torch.save'd). Loading is strict: a key
that does not match is an error that names it, never a silent skip."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from safeeraser.io import DataError
from safeeraser.models.families import family_of_model
from safeeraser.models.loading import first_line
from safeeraser.provenance import model_identity

log = logging.getLogger(__name__)
PROVENANCE_FILE = "safeeraser_adapter.json"  # written beside the adapter by train/loop.py


class CheckpointError(DataError):
    """A checkpoint that cannot be applied: one line naming it and what is wrong."""


def _strict_compare(expected: set[str], got: set[str], source: str) -> None:
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{source}: checkpoint does not match the model: " + ", ".join(parts))


def check_base_model(model, adapter_dir: Path) -> None:
    """An adapter records the base model it was made on: another family is refused; another model of the
    family (the shapes may well fit) is loaded with a warning naming both."""

    record = adapter_dir / PROVENANCE_FILE
    if not record.is_file():
        return  # made before adapters recorded their base model
    try:
        made_on = json.loads(record.read_text(encoding="utf-8"))["base_model"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{record}: unreadable ({first_line(exc)})") from None
    here = model_identity(getattr(model, "name_or_path", "") or "")
    model_type = model.config.model_type
    if made_on.get("model_type") and made_on["model_type"] != model_type:
        raise CheckpointError(f"{adapter_dir}: the adapter was made on a '{made_on['model_type']}' model "
                              f"({made_on.get('model_path')}), not on this '{model_type}' one ({here['model_path']})")
    same_path = Path(str(made_on.get("model_path"))).resolve() == Path(here["model_path"]).resolve()
    if made_on.get("config_sha256") != here["config_sha256"] or not same_path:
        log.warning("%s was made on base model %s (config sha256 %s) but is loaded onto %s (config sha256 %s): "
                    "results may not be comparable", adapter_dir, made_on.get("model_path"),
                    made_on.get("config_sha256"), here["model_path"], here["config_sha256"])


def _read_adapter_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not adapter_dir.is_dir():
        raise CheckpointError(f"{adapter_dir}: not an adapter folder")
    config = adapter_dir / "adapter_config.json"
    if not config.is_file():
        raise CheckpointError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter folder, nor a model "
                              "folder: no config.json either)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config}: unreadable ({first_line(exc)})") from None
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"{adapter_dir}: no adapter_model.safetensors")
    try:
        return load_file(str(weights))
    except Exception as exc:  # safetensors reports a cut-off file in several ways
        raise CheckpointError(f"{weights}: corrupt or truncated ({first_line(exc)})") from None


def load_adapter(model, adapter_dir: str | Path):
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    adapter_dir = Path(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    saved = _read_adapter_weights(adapter_dir)
    check_base_model(model, adapter_dir)
    try:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    except RuntimeError as exc:
        mismatch = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        if not mismatch:
            raise
        raise CheckpointError(f"{adapter_dir}: the adapter does not fit this model's shapes (made on another base "
                              f"model?): {mismatch[0]}") from None
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

    family = family_of_model(model)
    path = Path(path)
    try:
        # weights_only: a checkpoint is data; a pickle that would run code is refused, not executed
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler and a damaged file fail in many ways
        raise CheckpointError(f"{path}: not a loadable checkpoint.pt (only plain tensors are loaded; this file is "
                              f"damaged or holds other objects): {first_line(exc, 80)}") from None
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


def check_same_family(model_path: str, model_dir: Path) -> None:
    """A full model folder given as the checkpoint is answered with the base model's processor: it must be of
    the base model's family (another family's model fails deep inside its own code otherwise)."""
    def model_type(folder) -> str | None:
        try:
            return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            return None  # a hub name or an unreadable file: load_model reports it

    base, full = model_type(model_path), model_type(model_dir)
    if base and full and base != full:
        raise CheckpointError(f"{model_dir}: a full '{full}' model, but the base model {model_path} is '{base}': "
                              "give the base model it was trained from as --model_path")


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
        check_same_family(model_path, ckpt)
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
