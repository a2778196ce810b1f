"""score: a run's scores on another benchmark's tasks (a benchmark grid: `benchmark:`), as `safeeraser
benchmark-eval` computes them (the answers kept beside the scores), in one file per run named by
Runner.scores_path. Scored again when the run's weights changed since (a run unlearned again keeps its
folder's name), as answers are made again."""
from __future__ import annotations

import json
from pathlib import Path

from safeeraser.benchmarks.command import score_model
from safeeraser.infer.settings import InferSettings
from safeeraser.io import atomic_write_json
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.pipeline.kinds.infer import answers_from_other_weights, checkpoint
from safeeraser.provenance import environment, weights_identity


class Score(StepKind):
    name = "score"
    gpu_role = "infer"

    def plan(self, runner, graph):
        if runner.judging:  # SafeEraser's runs are answered and judged (infer, eval)
            return
        run = graph.run
        out = runner.scores_path(run)
        graph.add(Step(f"score:{run.tag}", self.name,
                       {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt), "model": run.model,
                        "out": str(out)}, graph.model_deps, output=str(out)))

    def run(self, runner, step, extra=None):
        a, ckpt, out = step.args, checkpoint(step), Path(step.args["out"])
        if self.done(runner, step):
            runner.note_reuse(str(out), json.loads(out.read_text()).get("environment"))
            return
        b = runner.cfg.benchmark
        splits = runner.eval_splits()
        runner.log(f"[{a['tag']}] scoring on {b.name}: {', '.join(splits)}")
        batch = int(runner.cfg.infer.get("batch_size", InferSettings.batch_size))
        scores = score_model(runner.bench, Path(b.data_path), splits, a["model"] or str(runner.cfg.model.vanilla),
                             None if ckpt is None else str(ckpt), max_new_tokens=b.max_new_tokens, batch_size=batch)
        atomic_write_json(out, {"benchmark": b.name, "data_path": str(b.data_path), "splits": splits,
                                "model_path": a["model"] or str(runner.cfg.model.vanilla),
                                "checkpoint": None if ckpt is None else weights_identity(ckpt),
                                "max_new_tokens": b.max_new_tokens, "scores": scores, "environment": environment()})
        runner.executed.append(step.id)

    def done(self, runner, step):
        """Made, from the run's weights as they are now."""
        out = Path(step.args["out"])
        return out.exists() and answers_from_other_weights(out, checkpoint(step)) is None


KIND = Score()
