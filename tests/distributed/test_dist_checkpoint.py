"""Checkpoints under two processes: every process writes its part into the temporary folder, the main one
renames it when complete; a resumed two-process run continues as an uninterrupted one. The command
reports once, not once per process."""
from __future__ import annotations

import json

from dist_helpers import ONE, launch, run_overrides
from safetensors.torch import load_file

CPU_MULTI = "config/accelerate/cpu_multi.yaml"
# A constant rate: a run capped at 2 steps and one capped at 4 share their schedule.
FIXED = ["lr_scheduler_type=constant", "warmup_ratio=0"]


def test_two_process_checkpoint_and_resume_equal_an_uninterrupted_run(vanilla_dir, mini_dir, dist_root):
    def overrides(save_dir):
        return run_overrides(vanilla_dir, mini_dir, "gdpd", save_dir, ONE["batch_size"] // 2,
                             ONE["gradient_accumulation_steps"]) + FIXED

    whole = dist_root / "ckpt-whole"
    launch(CPU_MULTI, overrides(whole) + ["max_train_steps=4"])
    many = dist_root / "ckpt-many"
    first = launch(CPU_MULTI, overrides(many) + ["max_train_steps=2", "save_steps=2"])
    assert first.stdout.count("saved to") == 1, first.stdout
    ckpt = many / "checkpoint-2"
    names = sorted(p.name for p in ckpt.iterdir())
    assert {"trainer_state.json", "trainable.safetensors", "rng-0.json", "rng-1.json"} <= set(names), names
    assert all(n.endswith((".json", ".safetensors")) for n in names) and not list(many.glob(".checkpoint-*"))

    launch(CPU_MULTI, overrides(many) + ["max_train_steps=4", "save_steps=2", "resume_from_checkpoint=latest"])
    rows_one = [json.loads(x) for x in (whole / "log.jsonl").read_text().splitlines()]
    rows_many = [json.loads(x) for x in (many / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_many] == [1, 2, 3, 4]
    # Same processes, same batches, the state restored exactly: the same numbers, not merely close ones
    # (one process against two differs in float reductions: test_dist_ddp covers that, with tolerances).
    for a, b in zip(rows_one, rows_many):
        assert (b["loss/total"], b["grad_norm"]) == (a["loss/total"], a["grad_norm"]), a["step"]
    w_one = load_file(str(whole / "adapter_model.safetensors"))
    w_many = load_file(str(many / "adapter_model.safetensors"))
    assert w_one.keys() == w_many.keys()
    for k in w_one:
        assert (w_one[k] == w_many[k]).all(), k
