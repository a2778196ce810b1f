"""Checkpoints under two processes: every process writes its part into the temporary folder, the main one
renames it when complete; a resumed two-process run continues as an uninterrupted one. The command
reports once, not once per process."""
from __future__ import annotations

import json

import pytest
from dist_helpers import EPOCHS, GDPD_HALF_BATCH, launch, run_overrides
from safetensors.torch import load_file


@pytest.mark.heavy
def test_two_process_checkpoint_and_resume_equal_an_uninterrupted_run(vanilla_dir, mini_dir, dist_root,
                                                                       launched_run):
    # the uninterrupted run is test_dist_ddp's gdpd run (a constant rate: stopping after step 2 leaves
    # the schedule of the steps after it unchanged)
    whole = launched_run(*GDPD_HALF_BATCH)
    _, config_file, method, batch_size, gas, *extra = GDPD_HALF_BATCH
    many = dist_root / "ckpt-many"
    overrides = run_overrides(vanilla_dir, mini_dir, method, many, batch_size, gas) + extra
    first = launch(config_file, overrides + ["max_train_steps=2", "save_steps=2"])
    assert first.stdout.count("saved to") == 1, first.stdout
    ckpt = many / "checkpoint-2"
    names = sorted(p.name for p in ckpt.iterdir())
    assert {"trainer_state.json", "trainable.safetensors", "rng-0.json", "rng-1.json"} <= set(names), names
    assert all(n.endswith((".json", ".safetensors")) for n in names) and not list(many.glob(".checkpoint-*"))

    launch(config_file, overrides + ["save_steps=2", "resume_from_checkpoint=latest"])
    rows_one = [json.loads(x) for x in (whole / "log.jsonl").read_text().splitlines()]
    rows_many = [json.loads(x) for x in (many / "log.jsonl").read_text().splitlines()]
    steps = EPOCHS * 24 // (batch_size * gas * 2)
    assert [r["step"] for r in rows_many] == [r["step"] for r in rows_one] == list(range(1, steps + 1))
    # Same processes, same batches, the state restored exactly: the same numbers, not merely close ones
    # (one process against two differs in float reductions: test_dist_ddp covers that, with tolerances).
    for a, b in zip(rows_one, rows_many):
        assert (b["loss/total"], b["grad_norm"], b["lr"]) == (a["loss/total"], a["grad_norm"], a["lr"]), a["step"]
    w_one = load_file(str(whole / "adapter_model.safetensors"))
    w_many = load_file(str(many / "adapter_model.safetensors"))
    assert w_one.keys() == w_many.keys()
    for k in w_one:
        assert (w_one[k] == w_many[k]).all(), k
