"""Smoke test: the bench runs end to end on the tiny model with very small sizes and writes its JSON.
No speed targets here: the bench itself is the check."""
from __future__ import annotations

import json
import math

from safeeraser.bench.command import main

EXPECTED_ROWS = {
    "train_gdpd_samples_per_s", "train_gdpd_tokens_per_s", "train_gdpd_peak_memory_mb",
    "train_klpd_samples_per_s", "train_klpd_tokens_per_s", "train_klpd_peak_memory_mb",
    "train_klpd_over_gdpd_memory", "train_outside_forward_backward_share",
    "infer_new_tokens_per_s", "infer_responses_per_s",
    "judge_labels_per_s", "judge_labels_agreeing", "judge_labels_as_served",
}


def test_bench_quick_writes_every_row(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["--quick", "--workdir", str(tmp_path / "work"), "--out", str(out), "--judge-items", "8"])
    assert rc == 0
    data = json.loads(out.read_text())
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == EXPECTED_ROWS
    for key, row in rows.items():
        for side in ("ours", "reference", "ratio"):
            value = row[side]
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, side, value)
    judge = data["details"]["judge"]
    assert judge["labels_match"] and judge["lost"] == 0 and judge["duplicated"] == 0 and judge["all_served_once"]
    infer = data["details"]["infer"]
    assert infer["ours"]["tokens_per_response"] == infer["reference"]["tokens_per_response"] == 8
    train = data["details"]["train"]
    assert train["klpd/ours"]["kl_reference"] == "adapter disabled"
    assert train["klpd/reference"]["kl_reference"] == "second loaded copy"
    assert data["meta"]["quick"] is True
    printed = capsys.readouterr().out
    assert "unlearning gdpd samples/s" in printed and "judging labels/s" in printed


def test_bench_7b_refuses_cpu_without_flag(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["--model", "llava-7b-random", "--workdir", str(tmp_path), "--out", str(tmp_path / "b.json")])
    assert rc == 2
    assert "--allow-cpu" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
