"""`safeeraser run --dry-run`: the grid's steps as a launcher would run them (resources, outputs, what is
done already, the accelerate command of a multi-GPU unlearning step), found without running anything and
without a cluster or a GPU."""
from __future__ import annotations

from safeeraser.pipeline.experiment import Runner
from safeeraser.pipeline.kinds import kind
from safeeraser.pipeline.launchers import launcher_class
from safeeraser.pipeline.steps import is_done, plan_steps
from safeeraser.train.config import ConfigError


def describe(cfg) -> str:
    runner = Runner(cfg, log=lambda *a: None)
    la = cfg.launcher
    lines = [f"experiment {cfg.name}: launcher {la.name}, workdir {runner.work}"]
    pending = runner.pending_inputs()
    if pending:
        lines.append(f"first: prepare ({', '.join(pending)}); the step names below change once the vanilla "
                     "model is made")
    try:
        steps = plan_steps(runner)
    except ConfigError as exc:  # the data is not there yet: names without checking it
        lines.append(f"note: {exc}: the names below may change once it is")
        runner.validate_paths = False
        steps = plan_steps(runner)
    remote = None
    if la.name != "local":
        remote = launcher_class(la.name)(cfg, log=lambda *a: None)
        remote.gpus = None  # not asked: "auto" is shown as the 1 GPU a cluster with GPUs gives
    todo = 0
    for step in steps:
        done = is_done(runner, step)
        todo += not done
        where, gpus = "this process", 0
        if remote is not None:
            gpus, cpus = remote.resources(step.kind)
            where = f"{gpus} GPU, {cpus} CPU"
        k = kind(step.kind)
        lines.append(f"  {'done' if done else 'todo'}  {step.id}{k.describe(step)}  [{where}]  -> {step.output}")
        if remote is not None and not done:
            lines += k.plan_lines(step, la, gpus)
    lines.append(f"{len(steps)} steps, {todo} to run, then the report in {runner.work}")
    return "\n".join(lines)
