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


@pytest.mark.parametrize("attack, says", [("jailbreak", "has no variant ''"), ("fgsm:eps8", "unknown attack 'fgsm'"),
                                          ("jailbreak:dan", "has no variant 'dan'")])
def test_a_bad_attack_is_a_config_error(tmp_path, vanilla_dir, mini_dir, attack, says):
    with pytest.raises(ConfigError, match=rf"key 'attacks\[0\]': .*{says}"):
        load_experiment(_config(tmp_path, vanilla_dir, mini_dir, attacks=[attack]))


@pytest.mark.heavy
def test_attacks_are_steps_with_rows_and_pd_effects(tmp_path, vanilla_dir, micro_dir):
    from safeeraser.pipeline.launchers.plan import describe

    # the micro benchmark (two records a split): the steps, rows and reruns checked here do not depend on how
    # many records are answered
    path = _config(tmp_path, vanilla_dir, micro_dir)
    rows, runner = run_experiment(path, log=lambda *_: None)
    assert not (tmp_path / "work" / "report.json").exists()  # a run with attacks never replaces the plain report
    report = json.loads((tmp_path / "work" / "report-attacks.json").read_text())
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
    assert "## Under the jailbreak:role_play attack" in (tmp_path / "work" / "report-attacks.md").read_text()
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


@pytest.mark.parametrize("item, says", [
    ({"attack": "pgd:image", "options": {"eps": 2}}, "option 'eps' must be a number in \\[0, 1\\]"),
    ({"attack": "relearn:forget", "options": {"steps": [1, 0]}}, "option 'steps' must be an integer >= 1, got 0"),
    ({"attack": "relearn:forget", "options": {"steps": [1, 2], "r": [4, 8]}}, "one option may be a list"),
    ({"attack": "relearn:forget", "options": {"steps": []}}, "an empty sweep"),
    ({"attack": "quantize:int4", "options": {"bits": 3}}, "has no option 'bits'. Its options: none"),
    ({"kind": "quantize"}, "expected KIND:VARIANT or"),
    ({"attack": "quantize:int3"}, "has no variant 'int3'"),
])
def test_bad_attack_options_are_a_config_error_before_anything_runs(tmp_path, vanilla_dir, mini_dir, item, says):
    with pytest.raises(ConfigError, match=rf"key 'attacks\[1\]': .*{says}"):
        load_experiment(_config(tmp_path, vanilla_dir, mini_dir, attacks=["jailbreak:role_play", item]))


def test_a_sweep_is_one_attack_per_value_and_one_curve(tmp_path, vanilla_dir, mini_dir):
    from safeeraser.pipeline.experiment import Runner
    from safeeraser.pipeline.steps import plan_steps

    path = _config(tmp_path, vanilla_dir, mini_dir, attacks=[
        "jailbreak:role_play", {"attack": "relearn:forget", "options": {"steps": [2, 8], "lr": 0.001}}])
    runner = Runner(load_experiment(path), log=lambda *_: None)
    labels = ["jailbreak:role_play", "relearn:forget lr=0.001 steps=2", "relearn:forget lr=0.001 steps=8"]
    assert list(runner.attacks) == labels
    assert runner.attack_curves() == {"relearn:forget lr=0.001 against steps": {
        "option": "steps", "values": [2, 8], "labels": labels[1:]}}
    steps = [s for s in plan_steps(runner) if s.kind == "attack"]
    assert len(steps) == 3 * 3 * 2  # three runs (vanilla, ga, gapd), three attacks, two splits
    relearn = [s.args for s in steps if s.args["kind"] == "relearn" and s.args["split"] == "val"]
    assert sorted(a["options"]["steps"] for a in relearn) == [2, 2, 2, 8, 8, 8]
    outputs = {s.output for s in steps}
    assert len(outputs) == len(steps)  # each attack's answers in their own file
    assert all(" " not in s.output for s in steps)


def test_the_report_puts_every_attack_beside_the_unattacked_rows(tmp_path):
    from safeeraser.pipeline.columns import COLUMNS
    from safeeraser.pipeline.report import write_report

    def row(method, eff):
        return {"method": method, **{c.key: 0.0 for c in COLUMNS}, "eff_asr": eff, "ci": {"eff_asr": [eff - 1, eff + 1]}}

    rows = [row("vanilla", 90.0), row("ga", 10.0)]
    attacks = {label: {"rows": [row("vanilla", v), row("ga", g)], "pd_effects": []}
               for label, v, g in [("relearn:forget steps=2", 91.0, 30.0), ("relearn:forget steps=8", 92.0, 70.0)]}
    curves = {"relearn:forget": {"option": "steps", "values": [2, 8], "labels": list(attacks)}}
    write_report(rows, tmp_path, "t", {"judge": {"name": "keyword"}}, attacks=attacks, curves=curves)
    text = (tmp_path / "report.md").read_text()
    curve = text.split("## relearn:forget: against steps")[1].split("Gen. ASR")[0]
    assert "| method | no attack | steps=2 | steps=8 |" in curve
    assert "| ga | 10.0 [9.0, 11.0] | 30.0 [29.0, 31.0] | 70.0 [69.0, 71.0] |" in curve
    both = text.split("## Before and after the attacks")[1].split("Gen. ASR")[0]
    assert "| method | no attack | relearn:forget steps=2 | relearn:forget steps=8 |" in both
    assert json.loads((tmp_path / "report.json").read_text())["attack_curves"] == curves


def test_two_sweeps_of_one_attack_are_two_curves(tmp_path, vanilla_dir, mini_dir):
    from safeeraser.pipeline.experiment import Runner

    path = _config(tmp_path, vanilla_dir, mini_dir, attacks=[
        {"attack": "relearn:forget", "options": {"steps": [2, 8]}},
        {"attack": "relearn:forget", "options": {"lr": [0.001, 0.0001]}}])
    curves = Runner(load_experiment(path), log=lambda *_: None).attack_curves()
    assert curves == {
        "relearn:forget against steps": {"option": "steps", "values": [2, 8],
                                         "labels": ["relearn:forget steps=2", "relearn:forget steps=8"]},
        "relearn:forget against lr": {"option": "lr", "values": [0.001, 0.0001],
                                      "labels": ["relearn:forget lr=0.001", "relearn:forget lr=0.0001"]}}
