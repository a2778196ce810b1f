"""Load a vision-language model and its processor through the Auto classes: one path for the tiny local
models and for the real checkpoints of every family."""
from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import torch

from safeeraser.io import DataError
from safeeraser.models.families import UnsupportedFamily, family_of_path

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
# owner/name on the hub; anything else that is not an existing folder cannot be a model
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class ModelLoadError(DataError):
    """A model or processor that cannot be loaded from model_path: one line naming the path and why."""


def check_model_path(model_path: str) -> None:
    """model_path is a model folder (with its config.json) or looks like a hub id: checked without loading."""
    path = Path(model_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model_path '{model_path}': the folder has no config.json (not a model folder)")
        return
    if path.exists():
        raise ModelLoadError(f"model_path '{model_path}': a file, not a model folder")
    if not _HUB_ID.fullmatch(str(model_path)) or str(model_path).startswith((".", "/", "~")):
        raise ModelLoadError(f"model_path '{model_path}': no such folder")


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as one short line, for errors that must stay one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _from_pretrained(kind: str, load, model_path: str, keep: tuple = (), **kwargs):
    """transformers' loading, its errors (a missing folder is reported as a bad hub id, an offline hub as a
    connection error) turned into one line naming the path; errors of the types in `keep` pass as they are."""
    check_model_path(model_path)
    try:
        return load(model_path, **kwargs)
    except keep:
        raise
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model_path '{model_path}': cannot load the {kind}: {first_line(exc)}") from None


def attention_implementation() -> str:
    """flash-attn when it is importable and a CUDA device is present; sdpa otherwise."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def resolve_dtype(name: str | None) -> torch.dtype:
    if name in (None, "auto"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise ModelLoadError(f"unknown dtype '{name}'; choose auto or one of {', '.join(DTYPES)}")
    return DTYPES[name]


def family_of(model_path: str):
    """The family of model_path, from its config.json alone."""
    return _from_pretrained("config", family_of_path, model_path, keep=(UnsupportedFamily,))


def load_processor(model_path: str):
    from transformers import AutoProcessor

    return _from_pretrained("processor", AutoProcessor.from_pretrained, model_path)


def load_model(model_path: str, dtype: str | None = "auto", device: str | torch.device | None = None):
    from transformers import AutoModelForImageTextToText

    torch_dtype = resolve_dtype(dtype)
    attn = attention_implementation()
    if attn == "flash_attention_2" and torch_dtype == torch.float32:
        attn = "sdpa"  # flash-attn has no fp32 kernels
    model = _from_pretrained("model", AutoModelForImageTextToText.from_pretrained, model_path, dtype=torch_dtype,
                             attn_implementation=attn)
    if device is not None:
        model.to(device)
    return model
