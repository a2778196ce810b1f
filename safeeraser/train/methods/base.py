"""What a method is: named, weighted loss terms over training views (TRL-style composition)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# Term kinds whose value needs the frozen reference model's logits on their view.
REFERENCE_KINDS = frozenset({"kl", "npo"})


@dataclass(frozen=True)
class Term:
    name: str  # the key in logs and in `loss_weights`
    view: str  # forget | retain | pd | idk | target
    kind: str  # nll | kl | npo | simnpo (see terms.py)
    weight: float  # signed: gradient ascent is a negative weight on the NLL


@dataclass(frozen=True)
class Method:
    name: str
    terms: tuple[Term, ...]
    # Adding the PD term: its default weight and the weights it changes (gdpd halves retain).
    pd_weight: float = 1.0
    pd_overrides: dict = field(default_factory=dict)

    def with_pd(self) -> "Method":
        terms = tuple(replace(t, weight=self.pd_overrides.get(t.name, t.weight)) for t in self.terms)
        return replace(self, name=self.name + "pd", terms=terms + (Term("pd", "pd", "nll", self.pd_weight),))

    def with_weights(self, weights: dict) -> "Method":
        return replace(self, terms=tuple(replace(t, weight=float(weights.get(t.name, t.weight))) for t in self.terms))

    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    def views(self) -> list[str]:
        return list(dict.fromkeys(t.view for t in self.terms))

    def reference_views(self) -> list[str]:
        return list(dict.fromkeys(t.view for t in self.terms if t.kind in REFERENCE_KINDS))
