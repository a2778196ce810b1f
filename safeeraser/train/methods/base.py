"""What a method is: named, weighted loss terms over training views (TRL-style composition), and the
method's own arguments with their defaults (open-unlearning style: `method_args.beta=0.2`)."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

# Term kinds whose value needs the frozen reference model's outputs on their view(s).
REFERENCE_KINDS = frozenset({"kl", "npo", "dpo", "undial", "rmu_retain"})
# Term kinds that read a language-model layer's hidden states instead of (or besides) the logits.
HIDDEN_KINDS = frozenset({"rmu_forget", "rmu_retain"})


@dataclass(frozen=True)
class Term:
    name: str  # the key in logs and in `loss_weights`
    view: str  # forget | retain | pd | idk | target
    kind: str  # nll | kl | npo | simnpo | dpo | undial | wga | rmu_forget | rmu_retain (see terms.py)
    weight: float  # signed: gradient ascent is a negative weight on the NLL
    pair: str | None = None  # a second view the kind reads (DPO: the rejected answers)
    # The training phase the term belongs to (SCRUB's "max" and "min" epochs); None: every epoch
    phase: str | None = None

    def views(self) -> list[str]:
        return [self.view] + ([self.pair] if self.pair else [])


@dataclass(frozen=True)
class Method:
    name: str
    terms: tuple[Term, ...]
    # Adding the PD term: its default weight and the weights it changes (gdpd halves retain).
    pd_weight: float = 1.0
    pd_overrides: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)  # the method's own arguments and their defaults
    # Each argument's allowed range: "> 0", ">= 0", "in (0, 1)", "int >= 1", "int >= 0" (an index or a count), or a tuple of
    # the strings it may be; None is always allowed where the default is None.
    arg_bounds: dict = field(default_factory=dict)
    # Two NLL terms that po_pooling=pooled makes one token mean over both views' answer tokens (the
    # reference's PO runs the refusal and retain rows as one batch of one forward pass)
    pool_terms: tuple[str, ...] = ()
    # The phase of an epoch (counted from 0) given the method's arguments, for methods whose terms have
    # phases; None: every term is active in every epoch
    phase_of_epoch: Callable[[int, dict], str] | None = None
    # Where the update may go (the multimodal methods, train/localize.py): an importance function of
    # train/importance, the views its pass reads, and what is done with its scores: "mask" (the weights it
    # does not select get no update: they stay bit-identical), "prune" (the neurons it selects are zeroed) or
    # "units" (only the MLP units it selects train); "anchor_mask" needs no importance (see anchor_terms)
    importance: str | None = None
    importance_views: tuple[str, ...] = ()
    restriction: str | None = None
    # Terms of a second adapter trained first by the same loop, whose update then masks this method's
    # (restriction "anchor_mask": SMFA's retain anchor, train/anchor_merge.py)
    anchor_terms: tuple[Term, ...] = ()
    # Why the method has no +PD variant (None: it has one)
    no_pd: str | None = None

    def trains(self) -> bool:
        """Whether the method takes optimizer steps (MANU only prunes)."""
        return bool(self.terms)

    def with_pd(self) -> "Method":
        if self.no_pd:
            raise ValueError(f"{self.name} has no PD variant: {self.no_pd}")
        terms = tuple(replace(t, weight=self.pd_overrides.get(t.name, t.weight)) for t in self.terms)
        return replace(self, name=self.name + "pd", terms=terms + (Term("pd", "pd", "nll", self.pd_weight),))

    def with_pooling(self) -> "Method":
        """The method with its `pool_terms` as one `pooled_nll` term named by both (weight: theirs, which
        must agree); unchanged when it has none."""
        if not self.pool_terms:
            return self
        first, second = (next(t for t in self.terms if t.name == n) for n in self.pool_terms)
        if first.weight != second.weight:
            raise ValueError(f"{self.name}: pooled terms need one weight, got {first.weight} and {second.weight}")
        pooled = Term(f"{first.name}_{second.name}", first.view, "pooled_nll", first.weight, pair=second.view)
        rest = tuple(t for t in self.terms if t.name not in self.pool_terms)
        return replace(self, terms=(pooled,) + rest)

    def with_weights(self, weights: dict) -> "Method":
        return replace(self, terms=tuple(replace(t, weight=float(weights.get(t.name, t.weight))) for t in self.terms))

    def in_epoch(self, epoch: int, args: dict) -> "Method":
        """The method with only the terms active in `epoch` (counted from 0; `args` its resolved arguments)
        and weighted other than 0: their views alone are computed (a 0-weight term, such as UNDIAL's
        optional retain term, costs nothing)."""
        phase = self.phase_of_epoch(epoch, args) if self.phase_of_epoch else None
        return replace(self, terms=tuple(t for t in self.terms
                                         if t.weight != 0 and (t.phase is None or t.phase == phase)))

    def resolve_args(self, given: dict) -> dict:
        """The method's arguments: its defaults, overridden by `given` (a key it does not have is a KeyError)."""
        unknown = sorted(set(given) - set(self.args))
        if unknown:
            raise KeyError(unknown[0])
        return {**self.args, **given}

    def arg_problem(self, name: str, value) -> str | None:
        """Why `value` is not allowed for argument `name`, or None."""
        bound = self.arg_bounds.get(name)
        if isinstance(bound, tuple):
            return None if value in bound else f"must be one of {', '.join(bound)}, got {value!r}"
        if value is None:
            return None if self.args.get(name) is None else "must be a number"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "must be a number"
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
        for least in (0, 1):
            if bound == f"int >= {least}":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
                return None if ok else f"must be an integer >= {least}, got {value}"
        if bound == "in (0, 1)" and not 0 < value < 1:
            return f"must be in (0, 1), got {value}"
        if bound == "> 0" and not value > 0:
            return f"must be > 0, got {value}"
        if bound == ">= 0" and not value >= 0:
            return f"must be >= 0, got {value}"
        return None

    def term_names(self) -> list[str]:
        return [t.name for t in self.terms]

    def _weighted(self):
        return (t for t in self.terms if t.weight != 0)

    def views(self) -> list[str]:
        """The views the weighted terms read (a 0-weight term's are neither built nor computed)."""
        return list(dict.fromkeys(v for t in self._weighted() for v in t.views()))

    def data_views(self) -> list[str]:
        """The views the training data holds: the terms' and the importance pass's."""
        return list(dict.fromkeys(self.views() + list(self.importance_views)))

    def reference_views(self) -> list[str]:
        return list(dict.fromkeys(v for t in self._weighted() if t.kind in REFERENCE_KINDS for v in t.views()))

    def hidden_views(self) -> list[str]:
        return list(dict.fromkeys(v for t in self._weighted() if t.kind in HIDDEN_KINDS for v in t.views()))
