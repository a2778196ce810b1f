"""Training checkpoints in safe formats: tensors in safetensors, everything else in JSON. Nothing in a
checkpoint folder is ever unpickled, so a planted or corrupted file cannot run code on resume.

A checkpoint is written under a hidden temporary name and renamed to `checkpoint-N` only once every
file is in place, the state file last: a run killed while saving leaves no folder that `latest` picks.

Folder layout (DeepSpeed keeps the model and optimizer in its own engine format under `deepspeed/`):
  trainable.safetensors            trainable weights (one copy: every process holds the same)
  optimizer.safetensors + .json    optimizer state tensors, and its param groups and scalars
  rng-<rank>.safetensors + .json   each process's torch / CUDA generators, and Python's and NumPy's
  trainer_state.json               position, scheduler, accelerate's counters, the run's config
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from safeeraser.io import atomic_write_json
from safeeraser.train.config import ConfigError

log = logging.getLogger(__name__)

FORMAT = 2  # 1 was accelerate's save_state (pickles)
STATE_FILE = "trainer_state.json"
WEIGHTS_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer"
DEEPSPEED_TAG = "deepspeed"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def checkpoint_dir(save_dir: Path, step: int) -> Path:
    return save_dir / f"checkpoint-{step}"


def temporary_dir(save_dir: Path, step: int) -> Path:
    return save_dir / f".checkpoint-{step}.tmp"


def complete_checkpoints(save_dir: Path) -> list[Path]:
    """The finished checkpoints under save_dir, oldest first: a folder without its state file was cut
    off while saving (by older versions, which wrote in place) and is never resumed from."""
    found = []
    for p in Path(save_dir).glob("checkpoint-*"):
        m = _CHECKPOINT.fullmatch(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(save_dir: Path) -> Path | None:
    ckpts = complete_checkpoints(save_dir)
    return ckpts[-1] if ckpts else None


def read_state(ckpt: Path) -> dict:
    """The checkpoint's state file, checked to be one this version can resume safely."""
    path = Path(ckpt) / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"key 'resume_from_checkpoint': '{ckpt}' is not a complete checkpoint (no {STATE_FILE}): "
                          "the run was stopped while saving it; resume from an earlier one or use 'latest'")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"key 'resume_from_checkpoint': {path} is unreadable: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"key 'resume_from_checkpoint': {ckpt} was written by an older version in accelerate's "
                          "pickle format, which is never loaded (unpickling can run code); start the run afresh")
    return state


# --- tensors and their JSON companions -------------------------------------------------------------------

def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"key 'resume_from_checkpoint': {path} is unreadable: {exc}") from None


def _save_with_meta(stem: Path, tensors: dict, meta) -> None:
    _save_tensors(stem.with_suffix(".safetensors"), tensors)
    atomic_write_json(stem.with_suffix(".json"), meta)


def _load_with_meta(stem: Path):
    meta = stem.with_suffix(".json")
    try:
        return _load_tensors(stem.with_suffix(".safetensors")), json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"key 'resume_from_checkpoint': {meta} is unreadable: {exc}") from None


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer state dict as (tensors, JSON-able rest): tensors under `state.<param>.<name>`."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {int(i): dict(v) for i, v in meta["scalars"].items()}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    meta = {"python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def trainable_weights(model) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


# --- whole checkpoints -------------------------------------------------------------------------------------

def _is_deepspeed(acc) -> bool:
    from accelerate.utils import DistributedType

    return acc.distributed_type == DistributedType.DEEPSPEED


def save_training_state(acc, model, optimizer, folder: Path) -> None:
    """Every process's part of a checkpoint into `folder` (the state file is the caller's, written last)."""
    if _is_deepspeed(acc):
        # ZeRO partitions the weights' master copies and the optimizer over the processes: only the engine
        # can write (and later reassemble) them. Its files are read by its own loader, never by ours.
        model.save_checkpoint(str(folder), tag=DEEPSPEED_TAG)
    elif acc.is_main_process:
        _save_tensors(folder / WEIGHTS_FILE, trainable_weights(acc.unwrap_model(model)))
        _save_with_meta(folder / OPTIMIZER_FILE, *flatten_optimizer(optimizer.state_dict()))
    _save_with_meta(folder / f"rng-{acc.process_index}", *rng_state())


def load_training_state(acc, model, optimizer, folder: Path) -> None:
    if _is_deepspeed(acc):
        load_path, _ = model.load_checkpoint(str(folder), tag=DEEPSPEED_TAG)
        if load_path is None:
            raise ConfigError(f"key 'resume_from_checkpoint': {folder} holds no DeepSpeed state "
                              f"({DEEPSPEED_TAG}/): it was written by a run without DeepSpeed")
    else:
        if not (folder / WEIGHTS_FILE).is_file():
            raise ConfigError(f"key 'resume_from_checkpoint': {folder} holds no {WEIGHTS_FILE}: it was written "
                              "by a DeepSpeed run; resume it under the same launch config")
        saved = _load_tensors(folder / WEIGHTS_FILE)
        params = trainable_weights(acc.unwrap_model(model))
        if set(saved) != set(params):
            missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
            raise ConfigError(f"key 'resume_from_checkpoint': {folder / WEIGHTS_FILE} does not match the model's "
                              f"trainable weights ({len(missing)} missing, e.g. {missing[:1]}; {len(extra)} "
                              f"unexpected, e.g. {extra[:1]})")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name].to(p.dtype))
        optimizer.load_state_dict(unflatten_optimizer(*_load_with_meta(folder / OPTIMIZER_FILE)))
    rng = folder / f"rng-{acc.process_index}"
    if rng.with_suffix(".json").is_file():
        set_rng_state(*_load_with_meta(rng))
    else:  # resumed with more processes than saved: training continues, dropout masks differ
        log.warning("%s has no random state for process %d: the resumed run will not repeat the uninterrupted "
                    "one's dropout exactly", folder, acc.process_index)


def fsync_tree(folder: Path) -> None:
    """Flush a finished checkpoint to disk before it is renamed into place: after a power loss the name
    must not point at files whose data never reached the disk."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial(save_dir: Path) -> None:
    """Drop what saves cut off by a kill left behind (hidden temporary and replaced folders)."""
    for p in Path(save_dir).glob(".checkpoint-*"):
        if p.is_dir() and p.name.endswith((".tmp", ".old")):
            shutil.rmtree(p)


def publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary checkpoint to its final name, replacing an older one of that name."""
    fsync_tree(tmp)
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)  # a rename onto a non-empty folder fails; the old one stays hidden meanwhile
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
