"""Where the grid's steps run. `local` runs them in this process, one after another, stopping at the first
error (the one-process pipeline); `ray` runs them as Ray tasks and `slurm` as SLURM jobs (submitit), side by
side as their dependencies allow, each with the GPUs and CPUs its kind needs. Whatever the launcher, every
step makes the same hash-named output and the report is assembled from those outputs in this process."""
from __future__ import annotations

import importlib

# name -> "module:class", imported on use (a launcher's engine is an optional install)
LAUNCHERS = {
    "local": "safeeraser.pipeline.launchers.local:LocalLauncher",
    "ray": "safeeraser.pipeline.launchers.ray_launcher:RayLauncher",
    "slurm": "safeeraser.pipeline.launchers.slurm_launcher:SlurmLauncher",
}


class StepsFailed(RuntimeError):
    """Steps of a remote launcher failed: each with its error and log; the steps that needed them were
    skipped. Everything else ran."""

    def __init__(self, failed: list[tuple[str, str, str]], skipped: list[tuple[str, str]]):
        self.failed, self.skipped = failed, skipped
        lines = [f"{len(failed)} step(s) failed and {len(skipped)} were skipped (they need a failed step); "
                 "no report was written:"]
        lines += [f"  FAILED  {step}: {error} (log: {log})" for step, error, log in failed]
        lines += [f"  skipped {step} (needs {need})" for step, need in skipped]
        lines.append("Fix the cause and run the same command again: the finished steps are reused.")
        super().__init__("\n".join(lines))


def launcher_class(name: str):
    module, cls = LAUNCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_launcher(cfg, log=print):
    return launcher_class(cfg.launcher.name)(cfg, log)
