"""save_best: the checkpoint with the best value of a logged metric, kept in save_dir/best, the final
adapter taken from it when asked, and the choice kept across a resume."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from safeeraser.train.config import ConfigError
from safeeraser.train.loop import run_training
from safeeraser.train.state import WEIGHTS_FILE


def _rows(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_the_best_step_is_kept_and_becomes_the_final_adapter(forget_cfg, tmp_path):
    # gd's total (-forget + retain) is largest early: the best (max) is not the last step
    out = run_training(forget_cfg("forget_loss=gd", "max_train_steps=5", "save_best=loss/total",
                                  "save_best_mode=max", "final_adapter=best", f"save_dir={tmp_path / 'best'}"))
    rows = _rows(out)
    totals = [r["loss/total"] for r in rows]
    best_step = rows[totals.index(max(totals))]["step"]
    done = json.loads((out / "run_complete.json").read_text())
    assert done["best"]["step"] == best_step and done["best"]["value"] == max(totals)
    assert json.loads((out / "best" / "trainer_state.json").read_text())["global_step"] == best_step
    best = load_file(str(out / "best" / WEIGHTS_FILE))
    final = load_file(str(out / "adapter_model.safetensors"))
    # the saved adapter holds the best checkpoint's weights (PEFT's file names them without the adapter
    # name; the projector's trainable copy is its modules_to_save)
    assert {k.replace(".default", "").replace(".modules_to_save", "") for k in best} == set(final)
    for key, value in best.items():
        assert (final[key.replace(".default", "").replace(".modules_to_save", "")] == value).all(), key
    last = run_training(forget_cfg("forget_loss=gd", "max_train_steps=5", "save_best=loss/total",
                                   "save_best_mode=max", f"save_dir={tmp_path / 'last'}"))
    last_final = load_file(str(last / "adapter_model.safetensors"))
    assert best_step != rows[-1]["step"]  # so that the best adapter is not the last one
    assert any(not (final[k] == last_final[k]).all() for k in final)


def test_save_best_settings_are_checked(forget_cfg):
    with pytest.raises(ConfigError, match="key 'final_adapter': 'best' needs save_best|key 'final_adapter': best needs"):
        forget_cfg("final_adapter=best")
    with pytest.raises(ConfigError, match="key 'save_best': eval/sarr is logged only with in-training evaluation"):
        forget_cfg("save_best=eval/sarr")
    with pytest.raises(ConfigError, match="key 'save_best_mode'"):
        forget_cfg("save_best=loss/total", "save_best_mode=lowest")


def test_a_resumed_run_keeps_its_best(forget_cfg, tmp_path, kill_at_step):
    common = ("forget_loss=gd", "max_train_steps=5", "save_steps=2", "save_best=loss/total", "save_best_mode=max",
              "final_adapter=best")
    full = run_training(forget_cfg(*common, f"save_dir={tmp_path / 'full'}"))
    restore = kill_at_step(4)  # during step 4, after checkpoint-2
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        run_training(forget_cfg(*common, f"save_dir={part}"))
    restore()
    resumed = run_training(forget_cfg(*common, f"save_dir={part}", "resume_from_checkpoint=latest"))
    a, b = (json.loads((d / "run_complete.json").read_text())["best"] for d in (full, resumed))
    assert a["step"] == b["step"] and a["value"] == pytest.approx(b["value"], abs=1e-6)
    fa, fb = (load_file(str(d / "adapter_model.safetensors")) for d in (full, resumed))
    for k in fa:
        assert (fa[k] - fb[k]).abs().max().item() < 1e-6, k
