"""The model-family registry: `config.model_type` -> the family's file. Adding a family is one file
(a `Family` subclass named `FAMILY` there) and one line here."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from safeeraser.registry import load_registered

if TYPE_CHECKING:  # the family classes import torch: the registry's names must not (CLI start-up, input checks)
    from safeeraser.models.families.base import Family

REGISTRY = {
    "llava": "llava",
    "llava_next": "llava_next",
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "gemma3": "gemma3",
    "internvl": "internvl",
}


DEFAULT_FAMILY = "llava"  # the paper's family: what make-tiny and the mini grid build unless told otherwise


class UnsupportedFamily(ValueError):
    pass


@lru_cache(maxsize=None)
def family_for(model_type: str) -> Family:
    if model_type not in REGISTRY:
        raise UnsupportedFamily(f"model_type '{model_type}' is not supported. Supported families: "
                                f"{', '.join(sorted(REGISTRY))}")
    return load_registered(__name__, REGISTRY[model_type], "FAMILY")


def family_of_model(model) -> Family:
    """The family of a loaded model (also behind PEFT, DDP or DeepSpeed wrappers)."""
    return family_for(model.config.model_type)


def family_of_path(model_path: str) -> Family:
    """The family of a checkpoint folder or hub id, from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    return family_for(AutoConfig.from_pretrained(model_path).model_type)


def __getattr__(name: str):
    if name == "Family":  # re-exported, imported only when asked for
        from safeeraser.models.families.base import Family

        return Family
    raise AttributeError(name)


__all__ = ["DEFAULT_FAMILY", "Family", "REGISTRY", "UnsupportedFamily", "family_for", "family_of_model", "family_of_path"]
