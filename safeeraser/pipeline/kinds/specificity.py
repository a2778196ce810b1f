"""specificity: the run's model on the standard MLLM benchmarks (when the experiment measures them)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from safeeraser.infer.settings import InferSettings
from safeeraser.pipeline.experiment import mmvet_grader
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.pipeline.locks import exclusive
from safeeraser.specificity import builtin_data_root
from safeeraser.specificity.engine_predict import load_engine_predict_fn
from safeeraser.specificity.runner import run_specificity

ALL_BENCHMARKS = "gqa,vizwiz,sqa,vqav2,pope,mmvet,mmbench"


class Specificity(StepKind):
    name = "specificity"
    gpu_role = "infer"

    def plan(self, runner, graph):
        if not runner.judging:  # another benchmark's report has no specificity (pipeline/benchmark_rows.py)
            return
        run = graph.run
        spec = runner.spec_path(run.tag)
        if spec is not None:
            graph.add(Step(f"specificity:{run.tag}", self.name,
                           {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt)},
                           graph.model_deps, output=str(spec)))

    def run(self, runner, step, extra=None):
        tag, ckpt = step.args["tag"], step.args.get("ckpt")
        out = runner.spec_path(tag)
        if out is None or self.done(runner, step):
            return
        cfg = runner.cfg
        spec = cfg.specificity
        root = builtin_data_root() if spec.data_root == "builtin" else Path(spec.data_root)
        loaded = {}

        def predict(requests):  # the model loads only if some question still needs an answer
            if "fn" not in loaded:
                batch_size = cfg.infer.get("batch_size", InferSettings.batch_size)
                loaded["fn"] = load_engine_predict_fn(cfg.model.vanilla, ckpt, batch_size=int(batch_size))
            return loaded["fn"](requests)

        runner.log(f"[{tag}] specificity")
        benchmarks = ALL_BENCHMARKS if spec.benchmarks == "all" else spec.benchmarks
        grades = runner.work / "specificity" / "mmvet_grades.jsonl"
        grader = mmvet_grader(cfg, grades)
        with exclusive(grades.with_name(grades.name + ".lock")) if grader else contextlib.nullcontext():
            run_specificity(predict, benchmarks, root, out, limit=spec.get("limit"), grader=grader, progress=False)
        runner.executed.append(f"specificity:{tag}")

    def done(self, runner, step):
        out = runner.spec_path(step.args["tag"])
        return out is not None and (out / "specificity.json").exists()


KIND = Specificity()
