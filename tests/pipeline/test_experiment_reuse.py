"""When `safeeraser run` reuses a finished step, and when it must not."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from safeeraser.io import DataError

from safeeraser.pipeline.experiment import run_experiment


def _experiment(tmp_path, vanilla_dir, data):
    cfg = {"name": "r", "workdir": str(tmp_path / "work"),
           "data": {"train": str(data / "all_train.json"), "val": str(data / "all_val.json"),
                    "prompt": str(data / "prompt.json")},
           "model": {"vanilla": str(vanilla_dir)}, "methods": [],
           "infer": {"batch_size": 16, "max_new_tokens": 4, "seed": 0},
           "judge": {"name": "keyword"}, "specificity": None}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_answers_made_while_an_image_was_broken_are_made_again_once_it_is_fixed(tmp_path, vanilla_dir, mini_dir):
    data = tmp_path / "data"
    shutil.copytree(mini_dir, data)
    record = json.loads((data / "all_val.json").read_text())[0]
    image = data / record["image_path"]
    good = image.read_bytes()
    image.write_bytes(b"not an image")
    path = _experiment(tmp_path, vanilla_dir, data)
    # the skipped record leaves answers that cannot be scored against the dataset: one clear error
    with pytest.raises(DataError, match="5 records, but .* has 6"):
        run_experiment(path, log=lambda *_: None)
    image.write_bytes(good)
    logs: list[str] = []
    (fixed,), runner = run_experiment(path, log=logs.append)
    assert any("lacks records [0]" in line for line in logs)
    assert "infer:vanilla" in " ".join(runner.executed) and "eval:vanilla" in " ".join(runner.executed)
    assert fixed["degenerate"]["val"]["harmful"]["n"] == 6 * 2 * 3  # every record answered: 2 pairs x 3 samples
    # and now that nothing was skipped, the next run reuses everything
    _, again = run_experiment(path, log=lambda *_: None)
    assert again.executed == []


def test_a_step_made_by_other_code_is_reused_with_a_visible_note(tmp_path, vanilla_dir, micro_dir):
    path = _experiment(tmp_path, vanilla_dir, micro_dir)
    run_experiment(path, log=lambda *_: None)
    (meta,) = (tmp_path / "work" / "infer").glob("*_val_*.json.meta.json")
    made = json.loads(meta.read_text())
    made["environment"]["code"]["commit"] = "0" * 40
    made["environment"]["packages"]["torch"] = "0.0"
    meta.write_text(json.dumps(made))
    logs: list[str] = []
    _, runner = run_experiment(path, log=logs.append)
    assert runner.executed == []
    (note,) = runner.reused_notes
    assert "code 0000000000 ->" in note and "torch 0.0 ->" in note
    assert any(line.startswith("note: ") and "reused" in line for line in logs)
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    assert report["reused_from_other_code"] == [note]


@pytest.mark.heavy
def test_a_vanilla_model_made_with_other_settings_is_made_again_and_nothing_downstream_is_reused(
        tmp_path, tiny_dir, micro_dir):
    # on the micro benchmark (two records a split): which steps are made again does not depend on how many
    # records the fine-tune trains on and the model answers
    cfg = {"name": "v", "workdir": str(tmp_path / "work"),
           "data": {"train": str(micro_dir / "all_train.json"), "val": str(micro_dir / "all_val.json"),
                    "prompt": str(micro_dir / "prompt.json")},
           "model": {"vanilla": str(tmp_path / "vanilla"),
                     "finetune": {"config": "finetune_tiny.yaml",
                                  "overrides": [f"model_path={tiny_dir}", "num_epochs=1"]}},
           "methods": [], "infer": {"batch_size": 16, "max_new_tokens": 2, "seed": 0},
           "judge": {"name": "keyword"}, "specificity": None}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _, first = run_experiment(path, log=lambda *_: None)
    assert "finetune" in first.executed
    cfg["model"]["finetune"]["overrides"] = [f"model_path={tiny_dir}", "num_epochs=2"]
    path.write_text(yaml.safe_dump(cfg))
    logs: list[str] = []
    _, second = run_experiment(path, log=logs.append)
    assert any("num_epochs: 1 -> 2" in line for line in logs)
    assert "finetune" in second.executed
    assert any(s.startswith("infer:vanilla") for s in second.executed)  # answers of the new model
    _, third = run_experiment(path, log=lambda *_: None)
    assert third.executed == []


def test_a_run_unlearned_again_is_answered_and_judged_again(tmp_path, vanilla_dir, micro_dir):
    import os

    path = _experiment(tmp_path, vanilla_dir, micro_dir)  # the micro benchmark: reuse is per step, not per record
    cfg = yaml.safe_load(path.read_text())
    cfg.update(methods=["ga"], forget_overrides=["max_train_steps=1"])
    path.write_text(yaml.safe_dump(cfg))
    run_experiment(path, log=lambda *_: None)
    (ckpt,) = (tmp_path / "work" / "forget").iterdir()
    _, again = run_experiment(path, log=lambda *_: None)
    assert again.executed == []  # the same weights: everything reused
    # the forget folder made anew (the same config, so the same name), e.g. after it was deleted
    weights = ckpt / "adapter_model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    logs: list[str] = []
    _, runner = run_experiment(path, log=logs.append)
    (tag,) = {step.split(":")[1] for step in runner.executed}
    # answered again; the judged files are named by the answers' content: the same weights give the same
    # answers here (only the file's time changed), so their judgement is reused
    assert sorted(runner.executed) == [f"infer:{tag}:train", f"infer:{tag}:val"] and tag.startswith("ga-")
    assert any("was made from other weights than" in line and "adapter_model.safetensors" in line for line in logs)
