"""Two CPU processes (gloo) under `accelerate launch` reach the same losses, steps, learning rates and
adapter as one process with the same global batch."""
from __future__ import annotations

from dist_helpers import CONSTANT_LR, ONE, assert_same_run, read_log


# Not marked heavy: their two-process runs are cpu_multi_runs' (made by test_dist_checkpoint, heavy, when the
# suite runs whole); run after it, each makes only its one-process run.
def test_gdpd_two_processes_half_batch_equal_one_process(one_process_run, cpu_multi_runs):
    # 1 x (4 x 2)  vs  2 x (2 x 2): the per-process batch halves, the accumulation stays. At a constant rate
    # (shared with test_dist_checkpoint); the test below checks the warm-up and cosine schedule.
    many = cpu_multi_runs["gdpd-whole"]
    assert_same_run(one_process_run("gdpd", *CONSTANT_LR), many, loss_tol=1e-5, weight_tol=5e-5)


def test_klpd_two_processes_half_accumulation_equal_one_process_for_qwen2_vl(tiny_family_dir, mini_dir, dist_root,
                                                                             cpu_multi_runs):
    """1 x (4 x 2) against 2 x (4 x 1): the accumulation halves; the KL reference is the adapter switched off;
    under the warm-up and cosine schedule. On a family whose images are patch rows concatenated over the
    batch (not one row per image), with 3-axis rotary positions: sharding the batch over processes must not
    change the run. (One run checks both; it shares its launch with the other runs here: a launch is ~16 s
    of CPU.)"""
    from dist_helpers import run_overrides

    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    base = tiny_family_dir("qwen2_vl")
    one = run_training(load_config("forget_tiny.yaml", run_overrides(
        base, mini_dir, "klpd", dist_root / "qwen-one", ONE["batch_size"], ONE["gradient_accumulation_steps"])))
    many = cpu_multi_runs["qwen-klpd"]  # 2 processes x (4 x 1), launched under config/accelerate/cpu_multi.yaml
    rows = read_log(many)
    assert rows[0]["lr"] < rows[1]["lr"] and rows[-1]["lr"] < max(r["lr"] for r in rows)  # warm-up, then decay
    # a random base model starts at chance (forget NLL ~ log vocabulary): gradient ascent moves it less
    assert_same_run(one, many, loss_tol=1e-5, weight_tol=5e-5, rise=1.05)
