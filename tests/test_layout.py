"""The top-level layout a user is told to fill: dataset/README.md names what the readers look for."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_dataset_readme_describes_every_benchmark_folder_and_file():
    from safeeraser.specificity import BENCHMARKS, builtin_data_root

    text = (REPO / "dataset" / "README.md").read_text()
    for name in ("all_train.json", "all_val.json", "prompt.json", "specificity/"):
        assert name in text
    for bench in BENCHMARKS.values():
        assert f"{bench.folder_names[0]}/" in text, bench.name
    # Every annotation/question file the builtin fixtures hold (the runnable example of the layout).
    for path in builtin_data_root().rglob("*"):
        if path.suffix in (".json", ".jsonl", ".tsv"):
            # POPE's three splits are written as one brace pattern.
            assert (path.name if not path.name.startswith("coco_pope_") else "coco_pope_{") in text, path.name


def test_readme_says_to_activate_the_venv_before_its_first_bare_command():
    lines = (REPO / "README.md").read_text().splitlines()
    activate = next(i for i, line in enumerate(lines) if "source .venv/bin/activate" in line)
    in_block, first_bare = False, None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and line.split()[:1] in (["python"], ["safeeraser"], ["accelerate"]):
            first_bare = i
            break
    assert first_bare is not None and activate < first_bare
