"""The attacks an experiment asks for (`attacks:` in its config), read and checked before anything runs:

    attacks:
      - jailbreak:role_play                    # KIND:VARIANT, the attack's default options
      - {attack: pgd:image, options: {eps: 0.0627}}
      - {attack: relearn:forget, options: {steps: [1, 5, 20]}}   # a sweep: one attack per value

An option given as a list is a sweep (one option per item at most): each value is an attack of its own,
and the report puts them side by side as a curve (ASR against the option)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from safeeraser.attacks import AttackError, attack_for


@dataclass(frozen=True)
class AttackSpec:
    kind: str
    variant: str
    options: dict = field(default_factory=dict)  # as written (the attack's defaults are not spelled out)
    sweep: str | None = None  # the option this attack is one point of a sweep over

    @property
    def label(self) -> str:
        """How the report names it: KIND:VARIANT, then its options (KEY=VALUE, sorted)."""
        given = " ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.kind}:{self.variant}" + (f" {given}" if given else "")

    @property
    def curve(self) -> str:
        """The curve it is a point of: the label without the swept option."""
        fixed = AttackSpec(self.kind, self.variant, {k: v for k, v in self.options.items() if k != self.sweep})
        return fixed.label

    @property
    def slug(self) -> str:
        """The label as a file name part."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "-", self.label.replace(":", "-"))


def parse_attack(item) -> list[AttackSpec]:
    """The attacks one item of an `attacks` list stands for (several for a sweep), each checked."""
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and set(item) <= {"attack", "options"} and "attack" in item:
        name, options = item["attack"], dict(item.get("options") or {})
    else:
        raise AttackError(f"expected KIND:VARIANT or {{attack: KIND:VARIANT, options: {{...}}}}, got {item!r}")
    kind, _, variant = str(name).partition(":")
    attack = attack_for(kind)
    attack.check_variant(variant)
    swept = [key for key, value in options.items() if isinstance(value, (list, tuple))]
    if len(swept) > 1:
        raise AttackError(f"one option may be a list (a sweep), got {', '.join(swept)}")
    if not swept:
        attack.check_options(options)
        return [AttackSpec(kind, variant, options)]
    (key,) = swept
    if not options[key]:
        raise AttackError(f"option '{key}': an empty sweep")
    specs = [AttackSpec(kind, variant, {**options, key: value}, sweep=key) for value in options[key]]
    for spec in specs:
        attack.check_options(spec.options)
    return specs
