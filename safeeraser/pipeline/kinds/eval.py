"""eval: a split's answers judged by the experiment's judge, then by each agreement judge."""
from __future__ import annotations

from pathlib import Path

from safeeraser.pipeline.kinds.base import Step, StepKind


class Eval(StepKind):
    name = "eval"
    gpu_role = "judge"

    def plan(self, runner, graph):
        run = graph.run
        for split, answers in graph.answers.items():
            graph.add(Step(f"eval:{run.tag}:{split}", self.name, {"tag": run.tag, "answers": answers.output,
                                                                   "split": split},
                           [answers.id], output=str(runner.work / "eval")))

    def run(self, runner, step, extra=None):
        runner.eval_run(step.args["tag"], Path(step.args["answers"]), step.args["split"])

    def done(self, runner, step):
        return runner.eval_done(Path(step.args["answers"]))


KIND = Eval()
