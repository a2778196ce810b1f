"""Registry of importance functions: what decides *where* a multimodal method forgets. Adding one: a
module defining IMPORTANCE (an `Importance`, base.py) and a line here: its name -> (its module, in this
package or a dotted path; what it scores: "weights", "neurons" (the output units of the MLPs' linear layers) or "units" (the
MLPs' intermediate units, inputs of their output projections)). The registry itself imports nothing
heavy: configs are checked against it before torch loads."""
from __future__ import annotations

from typing import TYPE_CHECKING

from safeeraser.registry import load_registered

if TYPE_CHECKING:
    from safeeraser.train.importance.base import Importance

REGISTRY: dict[str, tuple[str, str]] = {
    "fisher": ("fisher", "weights"),
    "activation": ("activation", "neurons"),
    "integrated_gradients": ("integrated_gradients", "units"),
}


def names_for(target: str) -> tuple[str, ...]:
    """The importance functions that score `target` (what a method's `importance` argument may name)."""
    return tuple(n for n, (_, t) in REGISTRY.items() if t == target)


def target_of(name: str) -> str:
    return REGISTRY[name][1]


def importance_for(name: str) -> Importance:
    return load_registered(__name__, REGISTRY[name][0], "IMPORTANCE")
