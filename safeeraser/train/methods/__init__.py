"""Registry of unlearning methods. Adding one: a module with METHOD, and a line here."""
from __future__ import annotations

import re

from safeeraser.train.methods import (dpo, ga, gd, idkdpo, kl, manu, mip_editor, mmunlearner, npo, po, rmu, scrub,
                                      sft, simnpo, smfa, undial, wga)
from safeeraser.train.methods.base import Method, Term  # noqa: F401

_MODULES = (ga, gd, kl, po, npo, simnpo, sft, rmu, dpo, idkdpo, undial, wga, scrub, mmunlearner, manu, mip_editor,
            smfa)
REGISTRY: dict[str, Method] = {m.METHOD.name: m.METHOD for m in _MODULES}


def _summary(doc: str) -> str:
    """A method module's first sentence, cut to one line: what --help lists."""
    sentence = re.split(r"(?<!\bal)\.\s", " ".join(doc.split()), maxsplit=1)[0].rstrip(".")
    return sentence if len(sentence) <= 100 else sentence[:99].rstrip() + "…"


SUMMARIES = {m.METHOD.name: _summary(m.__doc__) for m in _MODULES}
ALIASES = {"idk": "po"}  # the reference's code calls PO `idk`
METHOD_NAMES = sorted(REGISTRY) + [n + "pd" for n in sorted(REGISTRY) if not REGISTRY[n].no_pd] + ["idk", "idkpd"]


class NoPDVariant(KeyError):
    """NAMEpd asked for a method that has no PD variant; the message says why."""

    def __str__(self) -> str:
        return str(self.args[0])


def parse_method(name: str) -> Method:
    """`gdpd` is gd plus the PD term; `idk`/`idkpd` are the reference's names for po/popd."""
    base, pd = name, False
    if name not in REGISTRY and ALIASES.get(name) is None and name.endswith("pd"):
        base, pd = name[:-2], True
    base = ALIASES.get(base, base)
    if base not in REGISTRY:
        raise KeyError(name)
    method = REGISTRY[base]
    if pd and method.no_pd:
        raise NoPDVariant(f"there is no '{name}': {method.no_pd}")
    return method.with_pd() if pd else method


def method_of(cfg, weights: bool = True) -> Method:
    """The method a training config runs: its forget_loss, its PO pooling (po_pooling) and, with
    `weights`, its loss_weights."""
    method = parse_method(cfg.method.forget_loss)
    if cfg.method.po_pooling == "pooled":
        method = method.with_pooling()
    return method.with_weights(dict(cfg.method.loss_weights)) if weights else method
