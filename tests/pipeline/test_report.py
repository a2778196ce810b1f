"""The report: intervals, PD's paired effect and the judges' agreement on a real (tiny) run."""
from __future__ import annotations

import json

import yaml

from safeeraser.pipeline.experiment import run_experiment


def test_report_shows_intervals_pd_effect_degenerate_answers_and_agreement(tmp_path, vanilla_dir, mini_dir):
    cfg = {
        "name": "t", "workdir": str(tmp_path / "work"), "threads": 1,
        "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                 "prompt": str(mini_dir / "prompt.json")},
        "model": {"vanilla": str(vanilla_dir)},
        "forget_overrides": ["max_train_steps=2", "batch_size=4", "gradient_accumulation_steps=1"],
        "methods": ["ga", "gapd"], "infer": {"batch_size": 16, "max_new_tokens": 6, "seed": 0},
        "judge": {"name": "keyword"}, "agreement": ["truth"], "specificity": None,
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    rows, _ = run_experiment(tmp_path / "exp.yaml", log=lambda *_: None)
    work = tmp_path / "work"
    report = json.loads((work / "report.json").read_text())
    for row in rows:
        for key, ci in row["ci"].items():
            if ci is not None and row[key] is not None:
                assert ci[0] - 1e-9 <= row[key] <= ci[1] + 1e-9, (row["method"], key)
        harmful = row["degenerate"]["val"]["harmful"]
        assert row["degen"] == 100.0 * harmful["rate"] and harmful["n"] > 0
    (effect,) = report["pd_effects"]
    assert effect["method"] == "ga" and effect["with_pd"] == "gapd"
    sarr = effect["sarr"]
    assert sarr["low"] <= sarr["estimate"] <= sarr["high"]
    assert abs(100 * sarr["estimate"] - (rows[2]["sarr"] - rows[1]["sarr"])) < 1e-6  # same records, paired
    assert set(report["agreement"]["truth"]) == {"ASR", "RR", "SARR"}
    assert report["judge"]["name"] == "keyword" and report["provenance"]["code"]["commit"]
    md = (work / "report.md").read_text()
    assert "PD's effect" in md and "`truth` against `keyword`" in md and "Spec.: not measured" in md
    assert (work / "report.png").stat().st_size > 0
