"""DeepSpeed on the CPU (its CPU accelerator, gloo), two processes, with the shipped configs: ZeRO-2
with optimizer offload (the reference's) and ZeRO-3 with parameter and optimizer offload. Each
reaches the same losses and saves the same adapter as one process with the same global batch; under
ZeRO-3 the KL reference is the same engine with the adapter switched off, and the adapter is gathered
from the shards. Tolerances are wider than DDP's: the offload runs DeepSpeed's CPU Adam, not torch's."""
from __future__ import annotations

import pytest
from dist_helpers import ONE, assert_same_run, deepspeed_cpu_problem

problem = deepspeed_cpu_problem()
pytestmark = pytest.mark.skipif(problem is not None, reason=problem or "")


def test_zero2_offload_gdpd_equals_one_process(one_process_run, launched_run):
    many = launched_run("zero2-gdpd", "config/accelerate/deepspeed_zero2.yaml", "gdpd",
                        ONE["batch_size"] // 2, ONE["gradient_accumulation_steps"])
    assert_same_run(one_process_run("gdpd"), many, loss_tol=1e-4, weight_tol=5e-4)


def test_zero3_offload_klpd_equals_one_process(one_process_run, launched_run):
    many = launched_run("zero3-klpd", "config/accelerate/deepspeed_zero3.yaml", "klpd",
                        ONE["batch_size"] // 2, ONE["gradient_accumulation_steps"])
    assert_same_run(one_process_run("klpd"), many, loss_tol=1e-4, weight_tol=5e-4)
