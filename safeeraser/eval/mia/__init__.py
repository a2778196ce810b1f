"""Registry of membership-inference attacks: how well a score still tells the forget set (members) from
items the model never saw. Adding one: a module defining ATTACK (an `Attack`, base.py) and a line here
(its name -> its module, in this package or a dotted path). Light: no torch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from safeeraser.registry import load_registered

if TYPE_CHECKING:
    from safeeraser.eval.mia.base import Attack

REGISTRY = {
    "loss": "loss",
    "zlib": "zlib_ratio",
    "min_k": "min_k",
    "min_k_plus_plus": "min_k_plus_plus",
    "reference": "reference",
    "gradient_norm": "gradient_norm",
}

# What `safeeraser eval --unseen_file` runs unless told: the attacks that need only the model attacked
DEFAULT_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


def attack_for(name: str) -> Attack:
    return load_registered(__name__, REGISTRY[name], "ATTACK")
