"""The experiment grid as steps with dependencies. Per run (the vanilla model, or a method at a seed):

    forget -> infer(train), infer(val) -> eval(train), eval(val)   (each eval: the judge, then the agreement judges)
    forget -> specificity

With `launcher.infer_shards: N` (N > 1) each infer step is N shard steps, one GPU each, and the step of the
infer id becomes their merge (no GPU): the evals depend on the same id and read the same file.

Each step is a function of files: it reads its inputs' outputs and makes its own, under the hash name the
Runner gives it, and does nothing but note the reuse when that output exists. A launcher runs the steps
(in this process, as Ray tasks, as SLURM jobs); the report is then assembled from the files alone, so it is
the same whichever launcher ran them."""
from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path

from safeeraser.numerics import pin
from safeeraser.pipeline.kinds import RunGraph, Step, kind, kinds
from safeeraser.pipeline.kinds.prepare import Prepare

__all__ = ["Step", "call", "is_done", "plan_steps", "prepare_step", "run_step"]


def call(step: Step, runner, extra: dict | None = None) -> None:
    kind(step.kind).run(runner, step, extra)


def plan_steps(runner) -> list[Step]:
    """Every step of the grid, dependencies first (the order the local launcher runs them in: the order
    of the one-process pipeline): per run, each kind in the registry's order adds its steps."""
    graph = RunGraph()
    for run in runner.runs():
        graph.start(run)
        for k in kinds():
            k.plan(runner, graph)
    return list(graph.steps.values())


def prepare_step() -> Step:
    return Prepare.step()


def is_done(runner, step: Step) -> bool:
    """Whether the step's output exists already (then running it would only note the reuse)."""
    return kind(step.kind).done(runner, step)


# --- a step in another process -----------------------------------------------------------------------------
@contextlib.contextmanager
def output_to(path: Path):
    """Everything the process prints (Python, C++ and subprocesses alike) goes to `path` meanwhile: file
    descriptors 1 and 2 are pointed at it, and put back after (a Ray worker runs many steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def use_threads(n: int) -> None:
    """torch's CPU threads for this step (results on a CPU depend on them). A step that never needs torch
    (judging) does not pay its import for it: torch reads OMP_NUM_THREADS when it loads."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)


def run_step(payload: dict) -> dict:
    """The entry point of a step run by a remote launcher: in the driver's working directory (the config's
    paths are relative to it), with the experiment's torch threads, printing into the step's log. Never
    raises for the step's own failure: the result says it, and the log holds the traceback."""
    from omegaconf import OmegaConf

    from safeeraser.pipeline.experiment import Runner  # deferred: pipeline.experiment imports this module

    step: Step = payload["step"]
    log = Path(payload["log"])
    here = os.getcwd()
    os.chdir(payload["cwd"])
    try:
        with output_to(log):
            print(f"== {step.id} on {os.uname().nodename}, pid {os.getpid()}, "
                  f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}", flush=True)
            try:
                cfg = OmegaConf.create(payload["config"])
                pin(cfg.get("numerics", "native"))  # before the step loads torch (a reused worker may have)
                if payload.get("threads"):
                    use_threads(payload["threads"])
                runner = Runner(cfg, log=lambda *a: print(*a, flush=True))
                call(step, runner, payload.get("extra"))
            except BaseException as exc:  # noqa: BLE001 - reported, with its traceback in the log
                traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            print(f"== {step.id} done", flush=True)
            return {"ok": True, "executed": runner.executed, "notes": runner.reused_notes}
    finally:
        os.chdir(here)
