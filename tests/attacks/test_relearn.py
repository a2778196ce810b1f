"""The relearn attack: the unlearned model merged, a few LoRA steps on part of the forget set (or its
harmless pairs), then the answers; options checked."""
from __future__ import annotations

import json

import pytest

from safeeraser.attacks import AttackError
from safeeraser.attacks.relearn import ATTACK
from safeeraser.attacks.run import parse_options


def test_options_are_typed_and_checked():
    assert parse_options(["steps=3", "lr=1e-4", "every=2"]) == {"steps": 3, "lr": 1e-4, "every": 2}
    assert ATTACK.check_options({"steps": 3})["every"] == 10
    with pytest.raises(AttackError, match="has no option 'epochs'. Its options: steps, every, lr, r"):
        ATTACK.check_options({"epochs": 1})
    with pytest.raises(AttackError, match="option 'steps' must be an integer >= 1, got 0"):
        ATTACK.check_options({"steps": 0})
    with pytest.raises(AttackError, match="option 'lr' must be a number > 0, got -1"):
        ATTACK.check_options({"lr": -1})
    with pytest.raises(AttackError, match="expected KEY=VALUE"):
        parse_options(["steps"])


def test_relearning_trains_on_the_forget_answers_then_answers(two_records, attack_cli, forget_cfg, tmp_path, capsys):
    from safeeraser.eval.matching import load_matched
    from safeeraser.train.loop import run_training

    adapter = run_training(forget_cfg("forget_loss=ga", "max_train_steps=4", "lr=5e-3", "lr_scheduler_type=constant",
                                      "warmup_ratio=0"))  # forgets: the forget NLL far above the vanilla's
    data, _ = two_records
    out = tmp_path / "relearn.json"
    assert attack_cli("relearn", "forget", data, out, "--checkpoint_path", str(adapter), "--option", "steps=3",
                      "--option", "every=1", "--option", "lr=5e-3") == 0
    work = tmp_path / "relearn.json.attack"
    (merged,) = work.glob("merged-*")
    assert (merged / "config.json").exists()  # the unlearned model as one folder
    (trained,) = work.glob("relearn_forget_3steps_*")
    rows = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["loss/forget"] < rows[0]["loss/forget"]
    assert "loss/retain" not in rows[0]  # weight 0: not computed
    assert len(load_matched(out, data)) == 2
    assert attack_cli("relearn", "forget", data, tmp_path / "x.json", "--option", "epochs=1") == 2
    assert "has no option 'epochs'" in capsys.readouterr().err
    assert attack_cli("jailbreak", "fiction", data, tmp_path / "y.json", "--option", "steps=1") == 2
    assert "attack 'jailbreak' has no option 'steps'. Its options: none" in capsys.readouterr().err
