"""merge: an infer step's shard files joined into the answers one step would have written (no model)."""
from __future__ import annotations

from pathlib import Path

from safeeraser.pipeline.kinds.base import StepKind
from safeeraser.pipeline.kinds.infer import checkpoint


class Merge(StepKind):
    name = "merge"
    gpu_role = "none"  # planned by the infer kind, with its shards

    def run(self, runner, step, extra=None):
        a = step.args
        runner.infer_merge(a["tag"], checkpoint(step), a["split"], Path(a["out"]), a["shards"])

    def done(self, runner, step):
        return runner.infer_done(Path(step.args["out"]), checkpoint(step))

    def describe(self, step):
        return f" (merges its {step.args['shards']} shards)"


KIND = Merge()
