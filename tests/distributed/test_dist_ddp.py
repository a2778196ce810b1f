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
