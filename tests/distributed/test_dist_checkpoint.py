"""Checkpoints under two processes: every process writes its part into the temporary folder, the main one
renames it when complete; a resumed two-process run continues as an uninterrupted one. The command
reports once, not once per process."""
from __future__ import annotations

import json
import shutil

import pytest
from dist_helpers import EPOCHS, GDPD_HALF_BATCH, launch, run_overrides
from safetensors.torch import load_file


@pytest.mark.heavy
def test_two_process_checkpoint_and_resume_equal_an_uninterrupted_run(vanilla_dir, mini_dir, dist_root,
                                                                       cpu_multi_runs):
    # the uninterrupted run is test_dist_ddp's gdpd run (a constant rate: stopping after step 2 leaves
    # the schedule of the steps after it unchanged); the run stopped after step 2 ran in the same launch
    # (one launch's start-up less); the resume below starts processes of its own, as after a kill
    whole, stopped = cpu_multi_runs["gdpd-whole"], cpu_multi_runs["gdpd-stopped"]
    _, config_file, method, batch_size, gas, *extra = GDPD_HALF_BATCH
    # each run of the launch reports once, not once per process
    stdout, runs = cpu_multi_runs["stdout"], [v for k, v in cpu_multi_runs.items() if k != "stdout"]
    assert stdout.count("saved to") == len(runs) and all(stdout.count(f"saved to {r}\n") == 1 for r in runs), stdout
    ckpt = stopped / "checkpoint-2"
    names = sorted(p.name for p in ckpt.iterdir())
    assert {"trainer_state.json", "trainable.safetensors", "rng-0.json", "rng-1.json"} <= set(names), names
    assert all(n.endswith((".json", ".safetensors")) for n in names) and not list(stopped.glob(".checkpoint-*"))

    many = dist_root / "ckpt-many"  # the stopped run's folder, copied: the fixture's folders are only read
    shutil.copytree(stopped, many)
    overrides = run_overrides(vanilla_dir, mini_dir, method, many, batch_size, gas) + extra
    resumed = launch(config_file, overrides + ["save_steps=2", "resume_from_checkpoint=latest"])
    assert resumed.stdout.count("saved to") == 1, resumed.stdout
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
