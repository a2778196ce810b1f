"""Attacks in a grid (`attacks:` in an experiment config): steps after unlearning, judged like any answers,
with their own rows and PD's paired effect in the report; a bad attack is a config error up front."""
from __future__ import annotations

import json

import pytest
import yaml

from safeeraser.pipeline.experiment import load_experiment, run_experiment
from safeeraser.train.config import ConfigError


def _config(tmp_path, vanilla_dir, mini_dir, **extra):
    cfg = {"name": "t", "workdir": str(tmp_path / "work"), "methods": ["ga", "gapd"],
           "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                    "prompt": str(mini_dir / "prompt.json")},
           "model": {"vanilla": str(vanilla_dir)},
           "forget_overrides": ["max_train_steps=1", "batch_size=4", "gradient_accumulation_steps=1"],
           "infer": {"batch_size": 16, "max_new_tokens": 3, "seed": 0, "greedy": True},
           "judge": {"name": "keyword"}, "specificity": None, "attacks": ["jailbreak:role_play"], **extra}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("attack, says", [("jailbreak", "has no variant ''"), ("pgd:eps8", "unknown attack 'pgd'"),
                                          ("jailbreak:dan", "has no variant 'dan'")])
def test_a_bad_attack_is_a_config_error(tmp_path, vanilla_dir, mini_dir, attack, says):
    with pytest.raises(ConfigError, match=rf"key 'attacks\[0\]': .*{says}"):
        load_experiment(_config(tmp_path, vanilla_dir, mini_dir, attacks=[attack]))


@pytest.mark.heavy
def test_attacks_are_steps_with_rows_and_pd_effects(tmp_path, vanilla_dir, mini_dir):
    from safeeraser.pipeline.launchers.plan import describe

    path = _config(tmp_path, vanilla_dir, mini_dir)
    rows, runner = run_experiment(path, log=lambda *_: None)
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    table = report["attacks"]["jailbreak:role_play"]
    assert [r["method"] for r in table["rows"]] == ["vanilla", "ga", "gapd"]
    assert [e["method"] for e in table["pd_effects"]] == ["ga"]
    for row in table["rows"]:
        assert row["eff_asr"] is not None and row["ci"]["eff_asr"] is not None and "agreement" not in row
    attacked = [s for s in runner.executed if s.startswith("attack:")]
    assert len(attacked) == 3 * 2  # three runs, two splits
    (answers,) = [f for f in (tmp_path / "work" / "attacks").glob("ga-*_val_jailbreak-role_play_*.json")
                  if not f.name.endswith(".meta.json")]
    assert all(r["attack"]["variant"] == "role_play" for r in json.loads(answers.read_text()))
    assert "## Under the jailbreak:role_play attack" in (tmp_path / "work" / "report.md").read_text()
    assert [r["method"] for r in rows] == ["vanilla", "ga", "gapd"]  # the plain table is unchanged
    _, again = run_experiment(path, log=lambda *_: None)
    assert again.executed == []
    # the gapd run unlearned again (its adapter's file changed): its attack answers are made again
    import os

    (ckpt,) = [d for d in (tmp_path / "work" / "forget").iterdir() if d.name.startswith("gapd-")]
    weights = ckpt / "adapter_model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _, third = run_experiment(path, log=lambda *_: None)
    assert sorted(s.split(":")[0] for s in third.executed if s.startswith(("attack", "infer"))) == ["attack"] * 2 + ["infer"] * 2
    assert "attack:" in describe(load_experiment(path)) and "(jailbreak:role_play)" in describe(load_experiment(path))
