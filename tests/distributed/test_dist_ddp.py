"""Two CPU processes (gloo) under `accelerate launch` reach the same losses, steps, learning rates and
adapter as one process with the same global batch."""
from __future__ import annotations

from dist_helpers import ONE, assert_same_run

CPU_MULTI = "config/accelerate/cpu_multi.yaml"


def test_gdpd_two_processes_half_batch_equal_one_process(one_process_run, launched_run):
    # 1 x (4 x 2)  vs  2 x (2 x 2): the per-process batch halves, the accumulation stays.
    many = launched_run("ddp-gdpd", CPU_MULTI, "gdpd", ONE["batch_size"] // 2, ONE["gradient_accumulation_steps"])
    assert_same_run(one_process_run("gdpd"), many, loss_tol=1e-5, weight_tol=5e-5)


def test_klpd_two_processes_half_accumulation_equal_one_process(one_process_run, launched_run):
    # 1 x (4 x 2)  vs  2 x (4 x 1): the accumulation halves; the KL reference is the adapter switched off.
    many = launched_run("ddp-klpd", CPU_MULTI, "klpd", ONE["batch_size"], ONE["gradient_accumulation_steps"] // 2)
    assert_same_run(one_process_run("klpd"), many, loss_tol=1e-5, weight_tol=5e-5)


def test_gdpd_two_processes_equal_one_process_for_qwen2_vl(tiny_family_dir, mini_dir, dist_root):
    """A family whose images are patch rows concatenated over the batch (not one row per image), with
    3-axis rotary positions: sharding the batch over processes must not change the run."""
    from dist_helpers import launch, run_overrides

    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    base = tiny_family_dir("qwen2_vl")
    one = run_training(load_config("forget_tiny.yaml", run_overrides(
        base, mini_dir, "gdpd", dist_root / "qwen-one", ONE["batch_size"], ONE["gradient_accumulation_steps"])))
    many = dist_root / "qwen-ddp"
    launch(CPU_MULTI, run_overrides(base, mini_dir, "gdpd", many, ONE["batch_size"] // 2,
                                    ONE["gradient_accumulation_steps"]))
    # a random base model starts at chance (forget NLL ~ log vocabulary): gradient ascent moves it less
    assert_same_run(one, many, loss_tol=1e-5, weight_tol=5e-5, rise=1.05)
