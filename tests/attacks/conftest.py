"""A two-record benchmark file with absolute image paths, and `safeeraser attack` run on the tiny model."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def two_records(mini_dir, tmp_path):
    records = json.loads((mini_dir / "all_val.json").read_text())[:2]
    for r in records:
        r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
    data = tmp_path / "val.json"
    data.write_text(json.dumps(records))
    return data, records


@pytest.fixture
def attack_cli(vanilla_dir):
    """attack_cli(kind, variant, data, out, *extra) -> exit code of `safeeraser attack` (3 greedy new tokens)."""
    from safeeraser.cli import main

    def run(kind, variant, data, out, *extra):
        return main(["attack", "--kind", kind, "--variant", variant, "--eval_file", str(data), "--model_path",
                     str(vanilla_dir), "--output_file", str(out), "--max_new_tokens", "3", "--greedy", *extra])
    return run
