"""specificity: the run's model on the standard MLLM benchmarks (when the experiment measures them)."""
from __future__ import annotations

from pathlib import Path

from safeeraser.pipeline.kinds.base import Step, StepKind


class Specificity(StepKind):
    name = "specificity"
    gpu_role = "infer"

    def plan(self, runner, graph):
        run = graph.run
        spec = runner.spec_path(run.tag)
        if spec is not None:
            graph.add(Step(f"specificity:{run.tag}", self.name,
                           {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt)},
                           graph.model_deps, output=str(spec)))

    def run(self, runner, step, extra=None):
        ckpt = step.args.get("ckpt")
        runner.specificity(step.args["tag"], None if ckpt is None else Path(ckpt))

    def done(self, runner, step):
        return (runner.spec_path(step.args["tag"]) / "specificity.json").exists()


KIND = Specificity()
