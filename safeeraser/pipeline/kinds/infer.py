"""infer: the run's answers to a split (ckpt_infer), whole or, with launcher.infer_shards N > 1, as N shard
steps (one GPU each) whose merge (kinds/merge.py) takes the infer step's id: the steps after read the same
id and the same file either way."""
from __future__ import annotations

from pathlib import Path

from safeeraser.pipeline.kinds.base import Step, StepKind

SPLITS = ("train", "val")


def checkpoint(step: Step) -> Path | None:
    return None if step.args.get("ckpt") is None else Path(step.args["ckpt"])


class Infer(StepKind):
    name = "infer"
    gpu_role = "infer"  # a shard has these GPUs too

    def plan(self, runner, graph):
        run, shards = graph.run, runner.cfg.launcher.infer_shards
        for split in SPLITS:
            out = runner.infer_path(run.tag, split)
            step_id = f"infer:{run.tag}:{split}"
            args = {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt), "split": split,
                    "out": str(out)}
            if shards <= 1:
                graph.answers[split] = graph.add(Step(step_id, self.name, args, graph.model_deps, output=str(out)))
                continue
            from safeeraser.infer.ckpt_infer import shard_path

            parts = [graph.add(Step(f"{step_id}:shard-{k}-of-{shards}", self.name, {**args, "shard": k, "shards": shards},
                                    graph.model_deps, output=str(shard_path(out, k, shards)))).id
                     for k in range(shards)]
            graph.answers[split] = graph.add(Step(step_id, "merge", {**args, "shards": shards}, parts, output=str(out)))

    def run(self, runner, step, extra=None):
        a = step.args
        if a.get("shard") is None:
            runner.infer_run(a["tag"], checkpoint(step), a["split"], Path(a["out"]))
        else:
            runner.infer_shard_run(a["tag"], checkpoint(step), a["split"], Path(a["out"]), a["shard"], a["shards"])

    def done(self, runner, step):
        # a shard is done once its own answers exist, or once the merged answers do: nothing is answered again
        out, shard, ckpt = Path(step.args["out"]), step.args.get("shard"), checkpoint(step)
        if runner.infer_done(out, ckpt):
            return True
        if shard is None:
            return False
        from safeeraser.infer.ckpt_infer import shard_path

        return runner.infer_done(shard_path(out, shard, step.args["shards"]), ckpt)


KIND = Infer()
