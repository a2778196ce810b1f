"""The slurm launcher: each step a SLURM job submitted through submitit, with the GPUs and CPUs its kind
needs; this process stays to start each step once those it needs have finished, and to assemble the report.
`launcher.cluster: local` runs the jobs as processes on this machine instead (submitit's local executor:
tests, a machine without SLURM; it does not share GPUs out, so use it without GPUs)."""
from __future__ import annotations

import os
import time

from safeeraser.pipeline.steps import run_step
from safeeraser.train.config import ConfigError

from .remote import RemoteLauncher


class SlurmLauncher(RemoteLauncher):
    name = "slurm"
    default_poll_s = 10.0

    def start(self) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("key 'launcher.name': slurm needs submitit: pip install -e \".[slurm]\"") from None
        self.submitit = submitit
        s = self.settings
        if s.cluster is not None and s.cluster not in ("local", "debug", "slurm"):
            raise ConfigError(f"key 'launcher.cluster': one of slurm, local, debug (or null), got '{s.cluster}'")
        self.executors = {}
        first = self.executor(0, 1)  # checks the cluster and the sbatch options before any step is planned
        self.local = first.cluster != "slurm"
        if self.local and s.cluster is None:  # submitit falls back to local processes without a word
            raise ConfigError("key 'launcher.cluster': no SLURM on this machine (submitit finds no sbatch); "
                              "launcher.cluster=local runs the steps as processes here")
        if self.local and s.poll_s is None:
            self.poll_s = 0.5

    def executor(self, gpus: int, cpus: int):
        """One executor per shape of step: submitit keeps every option once set, and a CPU step must not ask
        for the GPUs of the step before it (nor for 0 GPUs, which some SLURM setups refuse)."""
        if (gpus, cpus) in self.executors:
            return self.executors[gpus, cpus]
        s = self.settings
        try:
            ex = self.submitit.AutoExecutor(folder=s.folder, cluster=s.cluster)
        except RuntimeError as exc:  # no sbatch here
            raise ConfigError(f"key 'launcher.cluster': {exc} (no SLURM on this machine? "
                              "launcher.cluster=local runs the jobs here)") from None
        extra = {f"slurm_{k}": v for k, v in dict(s.slurm_args).items()}
        try:
            ex.update_parameters(timeout_min=s.time_min, nodes=1, tasks_per_node=1, cpus_per_task=cpus,
                                 mem_gb=s.mem_gb, gpus_per_node=gpus or None, slurm_partition=s.partition, **extra)
        except NameError as exc:  # submitit's word for an option it does not know
            raise ConfigError(f"key 'launcher.slurm_args': {str(exc).splitlines()[0]}") from None
        self.executors[gpus, cpus] = ex
        return ex

    def cluster_gpus(self) -> int | None:
        if not self.local:
            return None  # the partition's: SLURM says at submission
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            return len([d for d in visible.split(",") if d.strip()])
        import shutil
        import subprocess

        if shutil.which("nvidia-smi") is None:
            return 0
        run = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return run.stdout.count("GPU ") if run.returncode == 0 else 0

    def capacity(self, cpus: int) -> int | None:
        # submitit's local executor starts every job at once: as many as this machine's CPUs hold
        return max(1, (os.cpu_count() or 1) // cpus) if self.local else None

    def submit(self, step, payload, gpus, cpus):
        ex = self.executor(gpus, cpus)
        ex.update_parameters(name=step.id.replace(":", "_"))
        return ex.submit(run_step, payload)

    def finished(self, handles):
        while True:
            done = [job for job in handles if job.done()]
            if done:
                return done
            time.sleep(self.poll_s)

    def result(self, handle):
        return handle.result()

    def cancel(self, handle) -> None:
        handle.cancel(check=False)

    def stop(self) -> None:
        return None
