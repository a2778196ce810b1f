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
