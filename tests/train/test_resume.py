import json

import pytest
from safetensors.torch import load_file

import safeeraser.train.loop as loop


def _weights(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


def test_resume_equals_uninterrupted_run(forget_cfg, tmp_path, kill_at_step):
    common = ("forget_loss=gdpd", "max_train_steps=6", "save_steps=2", "lr=5e-3", "LoRA.dropout=0.1",
              "gradient_accumulation_steps=2")
    full = loop.run_training(forget_cfg(*common, f"save_dir={tmp_path / 'full'}"))

    restore = kill_at_step(10)  # micro-step 10 = in the middle of optimizer step 5
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        loop.run_training(forget_cfg(*common, f"save_dir={part}"))
    assert (part / "checkpoint-4").is_dir() and not (part / "adapter_model.safetensors").exists()
    restore()
    resumed = loop.run_training(forget_cfg(*common, f"save_dir={part}", "resume_from_checkpoint=latest"))
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k
    log_a = [json.loads(x) for x in (full / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (resumed / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(log_a, log_b):
        assert ra["loss/total"] == pytest.approx(rb["loss/total"], abs=1e-6)
        assert ra["lr"] == pytest.approx(rb["lr"])


def test_finished_run_is_not_overwritten_by_accident(forget_cfg, tmp_path):
    out = tmp_path / "done"
    loop.run_training(forget_cfg("forget_loss=ga", "max_train_steps=1", f"save_dir={out}"))
    with pytest.raises(FileExistsError, match="overwrite=true"):
        loop.run_training(forget_cfg("forget_loss=ga", "max_train_steps=1", f"save_dir={out}", "overwrite=false"))
