"""Load a vision-language model and its processor through the Auto classes: one path for the tiny local
models and for the real checkpoints of every family."""
from __future__ import annotations

import importlib.util
import logging

import torch

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


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
        raise ValueError(f"unknown dtype '{name}'; choose auto or one of {', '.join(DTYPES)}")
    return DTYPES[name]


def load_processor(model_path: str):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_path)


def load_model(model_path: str, dtype: str | None = "auto", device: str | torch.device | None = None):
    from transformers import AutoModelForImageTextToText

    torch_dtype = resolve_dtype(dtype)
    attn = attention_implementation()
    if attn == "flash_attention_2" and torch_dtype == torch.float32:
        attn = "sdpa"  # flash-attn has no fp32 kernels
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch_dtype, attn_implementation=attn)
    if device is not None:
        model.to(device)
    return model
