"""The attack registry: name -> the module holding its `ATTACK`. Adding an attack is one module (an
Attack named ATTACK) and one line here."""
from __future__ import annotations

from functools import lru_cache

from safeeraser.attacks.base import Attack, AttackError
from safeeraser.registry import load_registered

REGISTRY = {
    "jailbreak": "jailbreak",
    "image_rephrase": "image_rephrase",
    "quantize": "quantize",
    "typographic": "typographic",
    "relearn": "relearn",
    "pgd": "pgd",
}


@lru_cache(maxsize=None)
def attack_for(name: str) -> Attack:
    if name not in REGISTRY:
        raise AttackError(f"unknown attack '{name}'. Known: {', '.join(REGISTRY)}")
    return load_registered(__name__, REGISTRY[name], "ATTACK")


__all__ = ["REGISTRY", "Attack", "AttackError", "attack_for"]
