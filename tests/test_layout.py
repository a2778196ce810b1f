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
