"""The package's layers: which subpackage may import which (every import, function-level ones included)."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "safeeraser"
# A package never imports one of these (they are above it): a lower layer stays usable without the upper.
NEVER = {
    "io": {"data", "models", "train", "eval", "infer", "pipeline", "bench", "cli"},
    "numerics": {"train", "eval", "infer", "pipeline", "cli"},
    "data": {"models", "train", "eval", "infer", "pipeline", "bench", "cli"},
    "models": {"train", "eval", "infer", "pipeline", "bench", "cli"},
    "eval": {"train", "pipeline", "bench", "cli"},
    "infer": {"train", "eval", "pipeline", "bench", "cli"},
    "train": {"pipeline", "bench", "cli"},
    "specificity": {"train", "attacks", "pipeline", "bench", "cli"},
    "attacks": {"pipeline", "bench", "cli"},
    "pipeline": {"bench", "cli"},
}


def _edges() -> dict[str, set[str]]:
    edges = defaultdict(set)
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        here = parts[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("safeeraser.") and name.split(".")[1] != here:
                    edges[here].add(name.split(".")[1])
    return edges


def test_no_package_imports_one_above_it():
    edges = _edges()
    bad = sorted((a, b) for a, above in NEVER.items() for b in edges.get(a, ()) if b in above)
    assert bad == []


def test_the_package_graph_has_no_cycle():
    edges = _edges()

    def reach(a, seen):
        for b in edges.get(a, ()):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen

    assert sorted(a for a in edges if a in reach(a, set())) == []


HEAVY = {"torch", "transformers", "peft", "accelerate", "deepspeed", "vllm", "openai"}
# Commands whose start-up time matters: they import what a subcommand needs when it runs
ENTRY_POINTS = {"cli", "bench.command", "eval.command", "specificity.command", "infer.ckpt_infer"}


def _module_imports() -> dict[str, tuple[set[str], list[tuple[int, str, str]]]]:
    """module -> (what it imports at its top level, [(line, imported module, the line's text)] of the package
    modules it imports inside functions)."""
    out = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        text = f.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        top, inner = set(), []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                top |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                top |= {a.name for a in node.names}
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("safeeraser."):
                        inner.append((node.lineno, node.module, lines[node.lineno - 1] + lines[node.lineno - 2]))
        out[name] = (top, inner)
    return out


def test_a_function_level_import_of_the_package_defers_something_heavy_or_says_why():
    """Only heavy modules (torch, transformers, ... at import time) are imported inside functions, outside
    the entry points; any other such import carries a comment saying why (an import cycle, numerics first)."""
    modules = _module_imports()
    heavy: dict[str, bool] = {}

    def is_heavy(name: str, seen=()) -> bool:
        name = name.removeprefix("safeeraser.")
        if name not in modules:
            return False
        if name not in heavy:
            top = modules[name][0]
            heavy[name] = any(t.split(".")[0] in HEAVY for t in top) or any(
                is_heavy(t, (*seen, name)) for t in top if t.startswith("safeeraser.") and
                t.removeprefix("safeeraser.") not in (*seen, name))
        return heavy[name]

    unexplained = []
    for name, (_, inner) in modules.items():
        if name in ENTRY_POINTS:
            continue
        for line, target, text in inner:
            if not is_heavy(target) and "#" not in text:
                unexplained.append(f"{name}:{line} imports {target}")
    assert not unexplained, "light imports inside functions, without a reason: " + "; ".join(unexplained)
