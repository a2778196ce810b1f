"""What the Ray and SLURM launchers share: each step's resources, and the walk over the step graph. A step
starts once the steps it needs have finished; its engine (Ray, submitit) places it where its GPUs and CPUs
are free. A failed step is recorded with its log and the steps that need it are skipped; every other step
still runs, and StepsFailed is raised at the end."""
from __future__ import annotations

import os
import time
from pathlib import Path

from safeeraser.pipeline.experiment import agreement_blocks, judge_options
from safeeraser.pipeline.kinds import kind
from safeeraser.pipeline.steps import call, is_done, prepare_step
from safeeraser.train.config import ConfigError

from . import StepsFailed


def judges_run_models(cfg) -> bool:
    """Whether the judge or an agreement judge runs a model here (hf, vllm backends), not behind a server."""
    blocks = [None, *agreement_blocks(cfg)]
    return any(judge_options(cfg, check_key=False, block=b)[1].get("backend", "server") not in ("server", None) for b in blocks)


class RemoteLauncher:
    """A launcher over an engine: subclasses give `start`, `submit`, `finished`, `result`, `cancel`, `stop`
    and `cluster_gpus` (None when the cluster's GPUs are unknown, as on SLURM)."""

    name = "remote"
    default_poll_s = 1.0

    def __init__(self, cfg, log=print):
        self.cfg, self.log, self.settings = cfg, log, cfg.launcher
        self.work = Path(cfg.workdir)
        self.poll_s = self.settings.poll_s if self.settings.poll_s is not None else self.default_poll_s

    def __enter__(self):
        self.start()
        self.gpus = self.cluster_gpus()
        for key in ("gpus_per_run", "gpus_per_infer", "gpus_per_judge"):
            wanted = self.settings[key]
            if wanted and self.gpus is not None and wanted > self.gpus:
                raise ConfigError(f"key 'launcher.{key}': {wanted} GPU(s) per step, but the {self.name} cluster "
                                  f"has {self.gpus}")
        return self

    def __exit__(self, *exc):
        self.stop()
        return None

    # --- resources --------------------------------------------------------------------------------
    def _auto(self, value):
        return value if value is not None else (1 if self.gpus is None or self.gpus > 0 else 0)

    def resources(self, kind_name: str) -> tuple[int, int]:
        """(GPUs, CPUs) of a step of this kind, from the launcher setting its kind's GPU role names."""
        s, role = self.settings, kind(kind_name).gpu_role
        if role == "run":
            gpus = self._auto(s.gpus_per_run)
        elif role == "one":
            gpus = min(self._auto(s.gpus_per_run), 1)
        elif role == "infer":
            gpus = self._auto(s.gpus_per_infer)
        elif role == "none":
            gpus = 0
        else:  # judge: a GPU only for a judge that runs a model here
            gpus = s.gpus_per_judge if s.gpus_per_judge is not None else (
                self._auto(None) if judges_run_models(self.cfg) else 0)
        return gpus, s.cpus_per_step or self.cfg.threads or 1

    def capacity(self, cpus: int) -> int | None:
        """The most steps of `cpus` CPUs to run at once, for an engine that does not place them (None: the
        engine places them where resources are free)."""
        return None

    def payload(self, step, gpus: int) -> dict:
        from omegaconf import OmegaConf

        extra = kind(step.kind).launch_extra(step, self.settings, gpus)
        return {"step": step, "config": OmegaConf.to_container(self.cfg), "cwd": os.getcwd(),
                "log": str(step.log_path(self.work).resolve()), "threads": self.cfg.threads, "extra": extra}

    # --- the graph ----------------------------------------------------------------------------------
    def prepare(self, runner) -> None:
        """The shared inputs (mini data, tiny model, vanilla fine-tune) as one step, when anything is missing:
        every other step's name depends on them."""
        pending = runner.pending_inputs()
        if pending:
            self.log(f"[{self.name}] inputs to make first: {', '.join(pending)}")
            self.run([prepare_step()], runner)

    def run(self, steps, runner) -> None:
        state: dict[str, str] = {}  # step id -> done | failed | skipped
        failed, skipped = [], []
        waiting = list(steps)  # dependencies first
        running: dict = {}  # engine handle -> (step, start time)
        try:
            while waiting or running:
                for step in list(waiting):
                    bad = next((d for d in step.deps if state.get(d) in ("failed", "skipped")), None)
                    if bad is not None:
                        waiting.remove(step)
                        state[step.id] = "skipped"
                        skipped.append((step.id, bad))
                        continue
                    if any(state.get(d) != "done" for d in step.deps):
                        continue
                    if is_done(runner, step):  # made before: noted here, no job for it
                        waiting.remove(step)
                        call(step, runner)
                        state[step.id] = "done"
                        continue
                    gpus, cpus = self.resources(step.kind)
                    if self.capacity(cpus) is not None and len(running) >= self.capacity(cpus):
                        continue  # an engine that does not share the machine out: no more at once than fit
                    waiting.remove(step)
                    log = step.log_path(self.work)
                    running[self.submit(step, self.payload(step, gpus), gpus, cpus)] = (step, time.perf_counter())
                    self.log(f"[{self.name}] submitted {step.id} ({gpus} GPU, {cpus} CPU; log: {log})")
                if not running:
                    if waiting:  # nothing can start and nothing runs: a dependency outside the plan
                        raise RuntimeError(f"steps wait for steps that are not planned: {[s.id for s in waiting]}")
                    continue
                for handle in self.finished(list(running)):
                    step, t0 = running.pop(handle)
                    log = step.log_path(self.work)
                    try:
                        result = self.result(handle)
                    except Exception as exc:  # noqa: BLE001 - the engine lost the step (a killed worker, a job cancelled)
                        last = (str(exc).strip().splitlines() or [""])[-1]
                        result = {"ok": False, "error": f"{type(exc).__name__}: {last}"}
                    if result.get("ok"):
                        state[step.id] = "done"
                        runner.executed += result["executed"]
                        for note in result["notes"]:
                            runner.log(f"note: {note}")
                        runner.reused_notes += result["notes"]
                        self.log(f"[{self.name}] done {step.id} ({time.perf_counter() - t0:.0f} s)")
                    else:
                        state[step.id] = "failed"
                        failed.append((step.id, result["error"], str(log)))
                        self.log(f"[{self.name}] FAILED {step.id}: {result['error']} (log: {log})")
        except BaseException:
            for handle in running:  # an interrupted driver leaves no step running without it
                self.cancel(handle)
            raise
        if failed:
            raise StepsFailed(failed, skipped)
