"""What a step kind is. A kind plans its steps for each run of the grid, runs one (a call of the Runner),
says whether one is done already, which launcher setting gives its GPUs, and what a plan shows of it.
Launchers and the planner know kinds only through this interface: adding a kind is one module here and
one line in the registry (kinds/__init__.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Which launcher setting gives a kind's GPUs (launchers/remote.py turns a role into a number):
# run: launcher.gpus_per_run; one: that, at most 1; infer: gpus_per_infer; judge: gpus_per_judge (a GPU only
# for a judge that runs a model here); none: no GPU.
GPU_ROLES = ("run", "one", "infer", "judge", "none")


@dataclass
class Step:
    id: str  # unique in the grid, e.g. "infer:ga-1a2b3c4d:val"
    kind: str  # a name in the kind registry
    args: dict  # the body's arguments (paths and names: they travel to another process)
    deps: list[str] = field(default_factory=list)
    output: str = ""  # what it makes, for plans and messages

    def log_path(self, work: Path) -> Path:
        """Where a step run by a remote launcher writes everything it prints."""
        return work / "logs" / (re.sub(r"[^A-Za-z0-9_.=-]", "_", self.id) + ".log")


class RunGraph:
    """The steps planned so far, and, for the run being planned, what they make that later kinds read:
    the steps that make its model, per split the step whose output is its answers, and per attack and
    split the step whose output is its answers under that attack."""

    def __init__(self):
        self.steps: dict[str, Step] = {}
        self.run = None
        self.model_deps: list[str] = []
        self.answers: dict[str, Step] = {}
        self.attacked: dict[tuple[str, str], Step] = {}  # (attack label, split) -> the step of those answers

    def start(self, run) -> None:
        self.run, self.model_deps, self.answers, self.attacked = run, [], {}, {}

    def add(self, step: Step) -> Step:
        return self.steps.setdefault(step.id, step)  # a method listed twice is one set of steps


class StepKind:
    name: str = ""
    gpu_role: str = "none"

    def plan(self, runner, graph: RunGraph) -> None:
        """Add this kind's steps for `graph.run` (kinds that are not planned per run add none)."""

    def run(self, runner, step: Step, extra: dict | None = None) -> None:
        """Make the step's output; when it is there already, only note the reuse (launchers call `run` for
        a done step too, in the driver, so that reuse of another code's output is reported)."""
        raise NotImplementedError

    def done(self, runner, step: Step) -> bool:
        """Whether the step's output exists already (then running it would only note the reuse)."""
        return False

    def describe(self, step: Step) -> str:
        """What a plan shows beside the step's id."""
        return ""

    def launch_extra(self, step: Step, settings, gpus: int) -> dict | None:
        """Arguments a remote launcher adds to the step's call (the processes of a multi-GPU step)."""
        return None

    def plan_lines(self, step: Step, settings, gpus: int) -> list[str]:
        """Further lines of a plan about how a remote launcher would run the step."""
        return []
