"""A user's checkout of the SafeEraser reference repository, read as data: YAML by `yaml.safe_load`,
Python by `ast` (parsed, never imported or executed). The project ships none of its text; reference mode
reads what it needs from the checkout at run time."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODEL_CONFIG = Path("config/model_config.yaml")


class CheckoutError(ValueError):
    """The reference checkout lacks what reference mode needs: the message names the file and the part."""


@dataclass(frozen=True)
class TrainingTags:
    """How the reference writes a training conversation: system + user + <image>\\n{q} + answer + {a}."""

    system: str
    user: str
    answer: str


def checkout_file(reference_dir: str | Path, relative: Path) -> Path:
    root = Path(reference_dir)
    if not root.is_dir():
        raise CheckoutError(f"reference_dir '{root}' is not a folder (a checkout of the SafeEraser repository)")
    path = root / relative
    if not path.is_file():
        raise CheckoutError(f"{path}: not found; is '{root}' a checkout of the SafeEraser repository?")
    return path


def parse_python(path: Path):
    """A checkout's Python file as a syntax tree (parsed, never imported or run)."""
    import ast

    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise CheckoutError(f"{path}: cannot parse as Python: {exc}") from None


def model_config(reference_dir: str | Path) -> dict:
    """The checkout's config/model_config.yaml: a mapping of the reference's model families."""
    import yaml

    path = checkout_file(reference_dir, MODEL_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckoutError(f"{path}: cannot parse YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CheckoutError(f"{path}: expected a mapping of model families")
    return data


def training_tags(reference_dir: str | Path, keys: Sequence[str]) -> TrainingTags:
    """The system, question-start and answer tags of the first of `keys` (the config's model_family, then
    the family's `reference_names`) that the checkout's model_config.yaml has."""
    data = model_config(reference_dir)
    path = Path(reference_dir) / MODEL_CONFIG
    key = next((k for k in keys if k and k in data), None)
    entry = data.get(key) if key is not None else None
    if not isinstance(entry, dict):
        raise CheckoutError(f"{path}: no entry {' or '.join(repr(k) for k in keys if k) or 'for this model'} "
                            f"(entries: {', '.join(map(str, data)) or 'none'})")
    fields = {}
    for name in ("system_tag", "question_start_tag", "answer_tag"):
        value = entry.get(name)
        if not isinstance(value, str):
            raise CheckoutError(f"{path}: entry '{key}' has no string field '{name}'")
        fields[name] = value
    return TrainingTags(fields["system_tag"], fields["question_start_tag"], fields["answer_tag"])

CONVERSATION = Path("conversation.py")


@dataclass(frozen=True)
class InferenceTags:
    """How the reference's ckpt_infer prompts: its vicuna_v1 conversation (two-separator style), i.e.
    system + sep + "USER: <image>\\n{q}" + sep + "ASSISTANT:"."""

    system: str
    roles: tuple[str, str]
    sep: str

    def prompt(self, image_token: str, question: str) -> str:
        return f"{self.system}{self.sep}{self.roles[0]}: {image_token}\n{question}{self.sep}{self.roles[1]}:"


def inference_tags(reference_dir: str | Path, template: str = "vicuna_v1") -> InferenceTags:
    """The conversation template ckpt_infer uses (conv_templates[template]), from the checkout's
    conversation.py, parsed (never imported)."""
    import ast

    path = checkout_file(reference_dir, CONVERSATION)
    tree = parse_python(path)
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    table = assigned.get("conv_templates")
    entry = None
    if isinstance(table, ast.Dict):
        entry = next((v for k, v in zip(table.keys, table.values)
                      if isinstance(k, ast.Constant) and k.value == template), None)
    call = assigned.get(entry.id) if isinstance(entry, ast.Name) else None
    if not isinstance(call, ast.Call):
        raise CheckoutError(f"{path}: conv_templates[{template!r}] is not a Conversation(...) assignment")
    kw = {k.arg: k.value for k in call.keywords}
    style = kw.get("sep_style")
    if not (isinstance(style, ast.Attribute) and style.attr == "TWO"):
        raise CheckoutError(f"{path}: conv_templates[{template!r}] does not use the two-separator style")
    try:
        system, roles, sep = (ast.literal_eval(kw[k]) for k in ("system", "roles", "sep"))
    except (KeyError, ValueError):
        raise CheckoutError(f"{path}: conv_templates[{template!r}] lacks a literal system, roles or sep") from None
    if not (isinstance(system, str) and isinstance(sep, str) and isinstance(roles, tuple) and len(roles) == 2
            and all(isinstance(r, str) for r in roles)):
        raise CheckoutError(f"{path}: conv_templates[{template!r}] has a system, roles or sep of another type")
    return InferenceTags(system, roles, sep)
