"""The ray launcher: each step a Ray task with the GPUs and CPUs its kind needs, on a Ray instance started
on this node (`ray.init()`) or on a running cluster (`launcher.address`). Every node must have this package
installed and see the experiment's paths at the same place (a shared file system), as the steps read and
write them there."""
from __future__ import annotations

from safeeraser.numerics import PINNED
from safeeraser.pipeline.steps import run_step
from safeeraser.train.config import ConfigError

from .remote import RemoteLauncher


def probe(address: str, timeout_s: float = 3.0) -> None:
    """A host:port (or ray://host:port) address where nothing listens is a ConfigError at once: Ray itself
    retries for about half a minute before its ConnectionError. 'auto' and other forms are Ray's to read."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"key 'launcher.address': nothing answers at {host}:{port} ({exc.strerror or exc}); is the "
                          "Ray cluster's head running there?") from None


class RayLauncher(RemoteLauncher):
    name = "ray"
    default_poll_s = 0.2

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("key 'launcher.name': ray needs Ray: pip install -e \".[ray]\"") from None
        self.ray = ray
        self.started = not ray.is_initialized()  # a caller's own ray.init() (a test, a notebook) is kept
        if self.started and self.settings.address:
            address = self.settings.address
            probe(address)
            try:
                ray.init(address=address)
            except ConnectionError as exc:
                raise ConfigError(f"key 'launcher.address': no Ray cluster at '{address}' ({str(exc).splitlines()[0]}). "
                                  "Start one (`ray start --head`), or leave launcher.address null to start Ray on "
                                  "this node") from None
        elif self.started:  # a Ray instance on this node, with its CPUs and GPUs
            ray.init(include_dashboard=False)
        # A failed step is reported, not retried behind the user's back (a retry would resume it anyway).
        self.task = ray.remote(max_retries=0)(run_step)

    def cluster_gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def submit(self, step, payload, gpus, cpus):
        # Pinned numerics: Ray starts the step's worker with them set, before it imports torch.
        env = PINNED.get(self.cfg.get("numerics", "native"))
        extra = {"runtime_env": {"env_vars": dict(env)}} if env else {}
        return self.task.options(num_gpus=gpus, num_cpus=cpus, name=step.id, **extra).remote(payload)

    def finished(self, handles):
        while True:  # short waits: Ctrl-C reaches this process between them (a wait without end ignores it)
            ready, _ = self.ray.wait(handles, num_returns=1, timeout=self.poll_s)
            if ready:
                return ready

    def result(self, handle):
        return self.ray.get(handle)

    def cancel(self, handle) -> None:
        self.ray.cancel(handle, force=True)

    def stop(self) -> None:
        if getattr(self, "started", False):
            self.ray.shutdown()
