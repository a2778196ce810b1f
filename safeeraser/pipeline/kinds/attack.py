"""attack: a run's answers to a split under one of the experiment's attacks (`attacks:`), made by
safeeraser.attacks.run as `safeeraser attack` makes them, then judged by the eval kind like any answers."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from safeeraser.attacks.run import run_attack
from safeeraser.infer.ckpt_infer import format_summary
from safeeraser.infer.settings import settings_for
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.pipeline.kinds.infer import SPLITS, answers_done, answers_made, checkpoint


class Attack(StepKind):
    name = "attack"
    gpu_role = "infer"

    def plan(self, runner, graph):
        run = graph.run
        for label, spec in runner.attacks.items():
            for split in SPLITS:
                out = runner.infer_path(run.tag, split, label)
                args = {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt), "split": split,
                        "out": str(out), "kind": spec.kind, "variant": spec.variant, "label": label,
                        "options": dict(spec.options)}
                graph.attacked[label, split] = graph.add(Step(f"attack:{run.tag}:{spec.slug}:{split}", self.name, args,
                                                              graph.model_deps, output=str(out)))

    def run(self, runner, step, extra=None):
        a, ckpt = step.args, checkpoint(step)
        if answers_made(runner, Path(a["out"]), ckpt):  # the reuse noted, or stale answers removed
            return
        settings = settings_for(OmegaConf.to_container(runner.cfg.infer), eval_file=runner.cfg.data[a["split"]],
                                model_path=runner.cfg.model.vanilla, output_file=a["out"], resume=True,
                                checkpoint_path=None if ckpt is None else str(ckpt))
        runner.log(f"[{a['tag']}] {a['label']} attack on {a['split']}")
        runner.log(format_summary(run_attack(a["kind"], a["variant"], settings, a["options"],
                                              forget_file=runner.cfg.data.train)))
        runner.executed.append(step.id)

    def done(self, runner, step):
        # made again when records were skipped or the run's adapter changed since, as plain answers are
        return answers_done(Path(step.args["out"]), checkpoint(step))

    def describe(self, step):
        return f" ({step.args['label']})"


KIND = Attack()
