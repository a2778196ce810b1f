"""Write the documentation's reference pages from the code, so that they cannot drift from it:

    python scripts/docs_reference.py            # writes docs/reference/config.md and docs/reference/methods.md

docs/reference/config.md: every training key by section, its default and the schema's comment on it
(safeeraser/train/config.py); docs/reference/methods.md: every method of the registry with its summary,
its loss terms (view, kind, weight, phase), its arguments with their defaults and bounds, and what its
+PD variant adds. tests/test_docs.py checks that the committed pages equal what this writes.
"""
from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "reference"


def _field_comments(cls) -> dict[str, str]:
    """A dataclass's field -> the comment written with it (the lines above it and the one after it)."""
    out, above = {}, []
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# ").strip())
            continue
        m = re.match(r"(\w+): [^=]+=.*?(?:#\s*(.*))?$", text)
        if m:
            out[m.group(1)] = " ".join([*above, m.group(2) or ""]).strip()
        above = [] if text or not above else above
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_page() -> str:
    from dataclasses import MISSING, fields

    from safeeraser.train.config import SECTIONS, LoRAConfig, TrainConfig

    lines = ["# Configuration reference", "",
             "Every key of the training configuration (`forget.py`, `safeeraser forget`, a grid's training config),",
             "by section. A key is written flat, as the reference writes it (`lr=2e-4`), or in its section",
             "(`optim.lr=2e-4`), in a YAML file or on the command line; LoRA's keys as `LoRA.r=16`. `ours`: a key",
             "the reference does not have. Generated from `safeeraser/train/config.py` by",
             "`scripts/docs_reference.py`.", ""]
    sections = {name: SECTIONS[name] if name != "LoRA" else LoRAConfig for name in TrainConfig.__dataclass_fields__}
    for name, cls in sections.items():
        comments = _field_comments(cls)
        lines += [f"## `{name}`", "", "| key | default | what |", "| --- | --- | --- |"]
        for f in fields(cls):
            if f.default is not MISSING:
                default = f.default
            else:
                default = f.default_factory()
            shown = f"`{default!r}`" if default not in ("", None) else ("`''`" if default == "" else "`null`")
            key = f"LoRA.{f.name}" if name == "LoRA" else f.name
            lines.append(f"| `{key}` | {_cell(shown)} | {_cell(comments.get(f.name, ''))} |")
        lines.append("")
    return "\n".join(lines)


def methods_page() -> str:
    import importlib

    from safeeraser.train.methods import REGISTRY

    lines = ["# Methods reference", "",
             "Every unlearning method of the registry (`safeeraser/train/methods/`, one module each), as",
             "`forget_loss=NAME`; `NAMEpd` adds the Prompt Decouple term (`pd`: NLL on the harmless answer about the",
             "SD image). A term's weight is signed (gradient ascent is a negative weight on the NLL) and can be",
             "changed by `loss_weights.TERM=W`; a method's arguments are `method_args.ARG=V`. Generated from the",
             "registry by `scripts/docs_reference.py`.", ""]
    for name in sorted(REGISTRY):
        method = REGISTRY[name]
        doc = importlib.import_module(f"safeeraser.train.methods.{name}").__doc__ or ""
        about = " ".join(doc.strip().split("\n\n")[0].split())  # the module's first paragraph
        lines += [f"## `{name}`", "", about, "",
                  "| term | view | kind | weight | phase |", "| --- | --- | --- | ---: | --- |"]
        for t in method.terms:
            view = t.view + (f" (and {t.pair})" if t.pair else "")
            lines.append(f"| `{t.name}` | {view} | {t.kind} | {t.weight:g} | {t.phase or 'every epoch'} |")
        if method.args:
            lines += ["", "Arguments: " + ", ".join(
                f"`{arg}` = {value!r}" + (f" ({method.arg_bounds[arg]})" if arg in method.arg_bounds else "")
                for arg, value in method.args.items())]
        if method.importance:
            lines += ["", f"Where it forgets: `{method.importance}` importance over the {', '.join(method.importance_views)} "
                          f"views, then a {method.restriction} (its summary in the run's `localization.json`)"]
        if not method.terms:
            lines += ["", "No loss terms: it takes no optimizer steps."]
        if method.no_pd:
            lines += ["", f"No `{name}pd`: {method.no_pd}."]
        else:
            pd = next(t for t in method.with_pd().terms if t.view == "pd")
            changed = [f"`{t.name}` {t.weight:g}" for t in method.with_pd().terms
                       if t.view != "pd" and t.weight != next(o.weight for o in method.terms if o.name == t.name)]
            lines += ["", f"`{name}pd`: + `pd` (weight {pd.weight:g})" + (f"; {', '.join(changed)}" if changed else "")]
        lines.append("")
    return "\n".join(lines)


PAGES = {"config.md": config_page, "methods.md": methods_page}


def main() -> None:
    sys.path.insert(0, str(REPO))
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in PAGES.items():
        (OUT / name).write_text(make() + "\n")
        print(OUT / name)


if __name__ == "__main__":
    main()
