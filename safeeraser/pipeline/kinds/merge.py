"""merge: an infer step's shard files joined into the answers one step would have written (no model)."""
from __future__ import annotations

from pathlib import Path

from safeeraser.pipeline.kinds.base import StepKind
from safeeraser.pipeline.kinds.infer import answer, answers_done, answers_made, checkpoint


class Merge(StepKind):
    name = "merge"
    gpu_role = "none"  # planned by the infer kind, with its shards

    def run(self, runner, step, extra=None):
        a, ckpt = step.args, checkpoint(step)
        out = Path(a["out"])
        if not answers_made(runner, out, ckpt):
            answer(runner, f"[{a['tag']}] merging the {a['shards']} shards of {a['split']}", ckpt, a["split"], out,
                   shards=a["shards"], merge_shards=True)
            runner.executed.append(f"merge:{a['tag']}:{a['split']}")

    def done(self, runner, step):
        return answers_done(Path(step.args["out"]), checkpoint(step))

    def describe(self, step):
        return f" (merges its {step.args['shards']} shards)"


KIND = Merge()
