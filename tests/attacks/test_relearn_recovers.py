"""Relearning brings forgotten answers back: a tiny model unlearned by NPO answers the forget
set's harmful questions harmlessly; a few relearning steps on part of that set, and the exact judge finds
harmful answers again (Efficacy ASR above its unlearned value)."""
from __future__ import annotations

import json

import pytest


def _asr(answers, data, tmp_path, name) -> float:
    from safeeraser.cli import main
    from safeeraser.eval.evaluate import stats_path_for

    judged = tmp_path / f"{name}_rr.json"
    assert main(["eval", "--input_file", str(answers), "--file_refer", str(data), "--output_file_rr", str(judged),
                 "--judge", "truth", "--no_progress"]) == 0
    return json.loads(stats_path_for(judged).read_text())["stats_asr_rr"]["unsafe_rate"]


@pytest.mark.heavy
def test_relearning_raises_efficacy_asr_above_the_unlearned_value(forget_cfg, vanilla_dir, mini_dir, tmp_path):
    from safeeraser.cli import main
    from safeeraser.train.loop import run_training

    records = json.loads((mini_dir / "all_train.json").read_text())[:4]  # the forget set's first records
    for r in records:
        r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
    data = tmp_path / "forget.json"
    data.write_text(json.dumps(records))
    # NPO as the mini grid runs it (its answers turn harmless while the model still answers)
    adapter = run_training(forget_cfg("forget_loss=npo", "method_args.beta=1.0", "lr=1e-2", "max_train_steps=6"))
    common = ["--eval_file", str(data), "--model_path", str(vanilla_dir), "--checkpoint_path", str(adapter),
              "--max_new_tokens", "40", "--greedy"]
    assert main(["infer", *common, "--output_file", str(tmp_path / "unlearned.json")]) == 0
    unlearned = _asr(tmp_path / "unlearned.json", data, tmp_path, "unlearned")
    assert unlearned < 0.5  # it forgot
    # 8 steps on one record in two of the forget set (the records answered include those not trained on)
    assert main(["attack", "--kind", "relearn", "--variant", "forget", *common, "--forget_file", str(data),
                 "--output_file", str(tmp_path / "relearned.json"), "--option", "steps=8", "--option", "every=2",
                 "--option", "lr=1e-3"]) == 0
    relearned = _asr(tmp_path / "relearned.json", data, tmp_path, "relearned")
    assert relearned > unlearned
