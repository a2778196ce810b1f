"""prepare: the shared inputs (the mini data, the tiny model, the vanilla fine-tune), when any is missing.
Not planned per run: the launcher runs it first, as every other step's name depends on what it makes."""
from __future__ import annotations

from safeeraser.pipeline.kinds.base import Step, StepKind


class Prepare(StepKind):
    name = "prepare"
    gpu_role = "one"  # the vanilla fine-tune runs in one process

    def run(self, runner, step, extra=None):
        runner.prepare_inputs()

    @staticmethod
    def step() -> Step:
        return Step("prepare", "prepare", {}, output="the mini data, the tiny model, the vanilla model")


KIND = Prepare()
