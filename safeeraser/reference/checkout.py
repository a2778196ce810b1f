"""A user's checkout of the SafeEraser reference repository, read as data: YAML by `yaml.safe_load`,
Python by `ast` (parsed, never imported or executed). The project ships none of its text; reference mode
reads what it needs from the checkout at run time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_CONFIG = Path("config/model_config.yaml")
# The reference's configs name their model family by this key (config/forget_lora.yaml's model_family)
DEFAULT_KEY = "llava-v1.5-vicuna"


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


def training_tags(reference_dir: str | Path, family_key: str = "") -> TrainingTags:
    """The system, question-start and answer tags under `family_key` (the config's model_family; the
    reference's LLaVA-1.5 key when that is empty or not in the file) of the checkout's model_config.yaml."""
    import yaml

    path = checkout_file(reference_dir, MODEL_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckoutError(f"{path}: cannot parse YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CheckoutError(f"{path}: expected a mapping of model families")
    key = family_key if family_key in data else DEFAULT_KEY
    entry = data.get(key)
    if not isinstance(entry, dict):
        raise CheckoutError(f"{path}: no entry '{key}' (entries: {', '.join(map(str, data)) or 'none'})")
    fields = {}
    for name in ("system_tag", "question_start_tag", "answer_tag"):
        value = entry.get(name)
        if not isinstance(value, str):
            raise CheckoutError(f"{path}: entry '{key}' has no string field '{name}'")
        fields[name] = value
    return TrainingTags(fields["system_tag"], fields["question_start_tag"], fields["answer_tag"])
