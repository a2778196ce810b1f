"""forget: a method unlearned at a seed into the run's folder (none for the vanilla run), resuming from its
last checkpoint; on more than one GPU under `accelerate launch`."""
from __future__ import annotations

import json
from pathlib import Path

from safeeraser.pipeline.gpu_group import TRAIN_CONFIG_FILE, accelerate_command, forget_on_gpus
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.train.config import find_config


class Forget(StepKind):
    name = "forget"
    gpu_role = "run"

    def plan(self, runner, graph):
        run = graph.run
        if run.ckpt is not None:
            graph.model_deps = [graph.add(Step(f"forget:{run.tag}", self.name, {"run": run}, output=str(run.ckpt))).id]

    def run(self, runner, step, extra=None):
        run, extra = step.args["run"], extra or {}
        out = run.ckpt
        if self.done(runner, step):
            from safeeraser.models.checkpoint import PROVENANCE_FILE

            made = out / PROVENANCE_FILE
            runner.note_reuse(str(out), json.loads(made.read_text()).get("environment") if made.exists() else None)
            return
        runner.log(f"[{run.method}] unlearning -> {out}")
        resume = {"resume_from_checkpoint": "latest"} if any(out.glob("checkpoint-*")) else {}
        cfg = run.train.load(save_dir=str(out), overwrite=True, **resume)
        processes = extra.get("processes", 1)
        if processes > 1:
            forget_on_gpus(cfg, out, processes, extra.get("accelerate_config"), log=runner.log)
        else:
            from safeeraser.train.loop import run_training

            run_training(cfg)
        runner.executed.append(f"forget:{run.method}")

    def done(self, runner, step):
        return (step.args["run"].ckpt / "run_complete.json").exists()

    def describe(self, step):
        run = step.args["run"]
        return f" ({run.method}{'' if run.seed is None else f', seed {run.seed}'})"

    def launch_extra(self, step, settings, gpus):
        return {"processes": gpus, "accelerate_config": settings.accelerate_config}

    def plan_lines(self, step, settings, gpus):
        if gpus <= 1:
            return []
        cmd = accelerate_command(find_config(settings.accelerate_config), gpus,
                                 Path(step.args["run"].ckpt) / TRAIN_CONFIG_FILE)
        return ["        $ CUDA_VISIBLE_DEVICES=<its GPUs> " + " ".join(cmd)]


KIND = Forget()
