"""The step-kind registry: name -> the module holding its `KIND`. Kinds are planned per run in this
order (each reads what the ones before made: the model, then the answers); adding a kind is one module
(a StepKind named KIND) and one line here."""
from __future__ import annotations

from functools import lru_cache

from safeeraser.pipeline.kinds.base import GPU_ROLES, RunGraph, Step, StepKind
from safeeraser.registry import load_registered

REGISTRY = {
    "prepare": "prepare",
    "forget": "forget",
    "infer": "infer",
    "score": "score",
    "merge": "merge",
    "attack": "attack",
    "eval": "eval",
    "specificity": "specificity",
}


@lru_cache(maxsize=None)
def kind(name: str) -> StepKind:
    if name not in REGISTRY:
        raise KeyError(f"unknown step kind '{name}'. Known: {', '.join(REGISTRY)}")
    found = load_registered(__name__, REGISTRY[name], "KIND")
    if found.gpu_role not in GPU_ROLES:
        raise ValueError(f"step kind '{name}': gpu_role '{found.gpu_role}' is not one of {', '.join(GPU_ROLES)}")
    return found


def kinds() -> list[StepKind]:
    return [kind(name) for name in REGISTRY]


__all__ = ["REGISTRY", "RunGraph", "Step", "StepKind", "kind", "kinds"]
