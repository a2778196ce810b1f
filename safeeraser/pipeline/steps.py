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
from dataclasses import dataclass, field
from pathlib import Path

# What each kind of step needs: a model on a GPU (unlearning, answering), or a judge (which may be a model).
GPU_KINDS = ("prepare", "forget", "infer", "specificity")


@dataclass
class Step:
    id: str  # unique in the grid, e.g. "infer:ga-1a2b3c4d:val"
    kind: str  # prepare | forget | infer (whole, or one shard) | merge (of an infer's shards) | eval | specificity
    args: dict  # the body's arguments (paths and names: they travel to another process)
    deps: list[str] = field(default_factory=list)
    output: str = ""  # what it makes, for plans and messages

    def log_path(self, work: Path) -> Path:
        """Where a step run by a remote launcher writes everything it prints."""
        return work / "logs" / (self.id.replace(":", "_") + ".log")


# --- the bodies: one per kind, each a call of the Runner ---------------------------------------------------
def _prepare(runner, **_):
    runner.prepare_inputs()


def _forget(runner, run, processes: int = 1, accelerate_config: str | None = None):
    runner.forget_run(run, processes=processes, accelerate_config=accelerate_config)


def _infer(runner, tag, ckpt, split, out, shard: int | None = None, shards: int = 1):
    ckpt = None if ckpt is None else Path(ckpt)
    if shard is None:
        runner.infer_run(tag, ckpt, split, Path(out))
    else:
        runner.infer_shard_run(tag, ckpt, split, Path(out), shard, shards)


def _merge(runner, tag, ckpt, split, out, shards):
    runner.infer_merge(tag, None if ckpt is None else Path(ckpt), split, Path(out), shards)


def _eval(runner, tag, answers, split):
    runner.eval_run(tag, Path(answers), split)


def _specificity(runner, tag, ckpt):
    runner.specificity(tag, None if ckpt is None else Path(ckpt))


BODIES = {"prepare": _prepare, "forget": _forget, "infer": _infer, "merge": _merge, "eval": _eval,
          "specificity": _specificity}


def call(step: Step, runner, extra: dict | None = None) -> None:
    BODIES[step.kind](runner, **step.args, **(extra or {}))


def plan_steps(runner) -> list[Step]:
    """Every step of the grid, dependencies first (the order the local launcher runs them in: the order
    of the one-process pipeline)."""
    steps: dict[str, Step] = {}

    def add(step: Step) -> Step:
        steps.setdefault(step.id, step)  # a method listed twice is one set of steps
        return step

    shards = runner.cfg.launcher.infer_shards

    def infer(run, split, out, deps) -> Step:
        """The step whose id and output the evals use: the inference, or the merge of its shards."""
        step_id = f"infer:{run.tag}:{split}"
        args = {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt), "split": split, "out": str(out)}
        if shards <= 1:
            return add(Step(step_id, "infer", args, deps, output=str(out)))
        from safeeraser.infer.ckpt_infer import shard_path

        parts = [add(Step(f"{step_id}:shard-{k}-of-{shards}", "infer", {**args, "shard": k, "shards": shards}, deps,
                          output=str(shard_path(out, k, shards)))).id for k in range(shards)]
        return add(Step(step_id, "merge", {**args, "shards": shards}, parts, output=str(out)))

    for run in runner.runs():
        deps = []
        if run.ckpt is not None:
            deps = [add(Step(f"forget:{run.tag}", "forget", {"run": run}, output=str(run.ckpt))).id]
        answers = {}
        for split in ("train", "val"):
            out = runner.infer_path(run.tag, split)
            answers[split] = infer(run, split, out, deps)
        for split in ("train", "val"):
            add(Step(f"eval:{run.tag}:{split}", "eval", {"tag": run.tag, "answers": answers[split].output,
                                                          "split": split}, [answers[split].id],
                     output=str(runner.work / "eval")))
        spec = runner.spec_path(run.tag)
        if spec is not None:
            add(Step(f"specificity:{run.tag}", "specificity",
                     {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt)}, deps, output=str(spec)))
    return list(steps.values())


def prepare_step() -> Step:
    return Step("prepare", "prepare", {}, output="the mini data, the tiny model, the vanilla model")


def is_done(runner, step: Step) -> bool:
    """Whether the step's output exists already (then running it would only note the reuse)."""
    if step.kind == "forget":
        return (step.args["run"].ckpt / "run_complete.json").exists()
    if step.kind in ("infer", "merge"):
        # a shard is done once its own answers exist, or once the merged answers do: nothing is answered again
        out, shard = Path(step.args["out"]), step.args.get("shard")
        ckpt = None if step.args.get("ckpt") is None else Path(step.args["ckpt"])
        if runner.infer_done(out, ckpt):
            return True
        if step.kind == "merge" or shard is None:
            return False
        from safeeraser.infer.ckpt_infer import shard_path

        return runner.infer_done(shard_path(out, shard, step.args["shards"]), ckpt)
    if step.kind == "eval":
        return runner.eval_done(Path(step.args["answers"]))
    if step.kind == "specificity":
        return (runner.spec_path(step.args["tag"]) / "specificity.json").exists()
    return False


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

    from safeeraser.pipeline.experiment import Runner

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
                from safeeraser.numerics import pin

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
