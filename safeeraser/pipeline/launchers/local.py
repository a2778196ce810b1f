"""The local launcher: every step in this process, in plan order, the first error stopping the run (the
one-process pipeline, unchanged)."""
from __future__ import annotations

from safeeraser.pipeline.steps import call


class LocalLauncher:
    name = "local"

    def __init__(self, cfg, log=print):
        self.cfg, self.log = cfg, log

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def prepare(self, runner) -> None:
        runner.prepare_inputs()

    def run(self, steps, runner) -> None:
        shards = self.cfg.launcher.infer_shards
        if shards > 1:
            self.log(f"note: launcher.infer_shards={shards} with the local launcher answers the shards one after "
                     "another in this process (the same answers, a model load each); ray or slurm runs them side "
                     "by side on their GPUs")
        for step in steps:
            call(step, runner)
