"""The reference's judge prompts, read out of a user's checkout by parsing (never importing) its code.

`eval/eval_config.py` assigns one dict literal, TEMPLATES: one ASR template per image category, the
refusal check "RR" and the SD-answer check "RR_sd", each `{"template": <string>}` with one `{prediction}`
field. `eval_all.py` builds the GPT-Eval prompt as an f-string inside `evaluate_unharmpair` (the names
question, correct_answer and prediction, in that order) and sends every prompt after a system message
written in `gpt_4_call`'s request. Everything is taken from the syntax tree as constants, so the prompts
sent are the reference's bytes, and nothing of the checkout runs.
"""
from __future__ import annotations

import ast
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from safeeraser.reference.checkout import CheckoutError, checkout_file, parse_python

CONFIG_FILE = Path("eval/eval_config.py")
EVAL_FILE = Path("eval_all.py")
CHECKS = ("RR", "RR_sd")  # the TEMPLATES keys that are not categories
SCORE_FIELDS = ("question", "correct_answer", "prediction")


@dataclass(frozen=True)
class ReferenceTemplates:
    asr: dict  # category -> template with one {prediction}
    rr: str
    rr_sd: str
    score_parts: tuple  # the GPT-Eval prompt: constant strings and field names, in order
    system: str  # the system message sent before every prompt
    model: str  # the model the reference asks ("gpt-4o")
    digest: str  # sha256 of all of the above: the judge cache's prompt version

    def score_prompt(self, question: str, correct_answer: str, prediction: str) -> str:
        values = {"question": question, "correct_answer": correct_answer, "prediction": prediction}
        return "".join(values[p[1]] if isinstance(p, tuple) else p for p in self.score_parts)


def _templates(path: Path) -> dict:
    tree = parse_python(path)
    node = next((n.value for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "TEMPLATES" for t in n.targets)), None)
    if node is None:
        raise CheckoutError(f"{path}: no assignment to TEMPLATES")
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise CheckoutError(f"{path}: TEMPLATES is not a literal of strings") from None
    if not isinstance(value, dict):
        raise CheckoutError(f"{path}: TEMPLATES is not a dict")
    out = {}
    for key, entry in value.items():
        template = entry.get("template") if isinstance(entry, dict) else None
        if not isinstance(template, str):
            raise CheckoutError(f"{path}: TEMPLATES[{key!r}] has no string 'template'")
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        if fields != {"prediction"}:
            raise CheckoutError(f"{path}: TEMPLATES[{key!r}]['template'] has fields {sorted(fields)}, "
                                "expected only {prediction}")
        out[key] = template
    missing = [k for k in CHECKS if k not in out]
    if missing or len(out) == len(CHECKS):
        raise CheckoutError(f"{path}: TEMPLATES lacks {', '.join(missing) or 'any category template'}")
    return out


def _function(tree: ast.Module, name: str, path: Path) -> ast.FunctionDef:
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        raise CheckoutError(f"{path}: no function {name}")
    return fn


def _score_parts(fn: ast.FunctionDef, path: Path) -> tuple:
    node = next((n.value for n in ast.walk(fn) if isinstance(n, ast.Assign) and isinstance(n.value, ast.JoinedStr)
                 and any(isinstance(t, ast.Name) and t.id == "prompt" for t in n.targets)), None)
    if node is None:
        raise CheckoutError(f"{path}: evaluate_unharmpair assigns no f-string to prompt")
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
        elif (isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name)
              and value.conversion == -1 and value.format_spec is None):
            parts.append(("field", value.value.id))
        else:
            raise CheckoutError(f"{path}: the GPT-Eval prompt has a part other than text and plain names")
    names = tuple(p[1] for p in parts if isinstance(p, tuple))
    if names != SCORE_FIELDS:
        raise CheckoutError(f"{path}: the GPT-Eval prompt's fields are {names}, expected {SCORE_FIELDS}")
    return tuple(parts)


def _request(fn: ast.FunctionDef, path: Path) -> tuple[str, str]:
    """(model, system message) from the dict literal the request body is made of."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.Dict):
            continue
        keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
        if "model" in keys and "messages" in keys:
            model = node.values[keys.index("model")]
            messages = node.values[keys.index("messages")]
            first = messages.elts[0] if isinstance(messages, ast.List) and messages.elts else None
            if isinstance(model, ast.Constant) and isinstance(first, ast.Dict):
                inner = {k.value: v for k, v in zip(first.keys, first.values) if isinstance(k, ast.Constant)}
                role, content = inner.get("role"), inner.get("content")
                if (isinstance(role, ast.Constant) and role.value == "system" and isinstance(content, ast.Constant)
                        and isinstance(content.value, str)):
                    return str(model.value), content.value
    raise CheckoutError(f"{path}: gpt_4_call builds no request with a model and a system message")


def load_reference_templates(reference_dir: str | Path) -> ReferenceTemplates:
    """The reference's prompts from the checkout at `reference_dir`. Raises CheckoutError naming the file
    and the part that is missing or not as expected."""
    config_path = checkout_file(reference_dir, CONFIG_FILE)
    eval_path = checkout_file(reference_dir, EVAL_FILE)
    templates = _templates(config_path)
    tree = parse_python(eval_path)
    parts = _score_parts(_function(tree, "evaluate_unharmpair", eval_path), eval_path)
    model, system = _request(_function(tree, "gpt_4_call", eval_path), eval_path)
    asr = {k: v for k, v in templates.items() if k not in CHECKS}
    digest = hashlib.sha256(repr((sorted(templates.items()), parts, system, model)).encode()).hexdigest()
    return ReferenceTemplates(asr, templates["RR"], templates["RR_sd"], parts, system, model, digest)
