"""Step kinds are one module and one registry line: a toy kind added that way is planned per run after the
answers, run by the launcher, skipped once done, shown by the plan and given its GPUs by its role."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml

TOY = '''
"""count: how many val answers a run gave (a toy kind, for the test)."""
import json
from pathlib import Path

from safeeraser.pipeline.kinds.base import Step, StepKind


class Count(StepKind):
    name = "count"
    gpu_role = "none"

    def plan(self, runner, graph):
        answers = graph.answers["val"]
        graph.add(Step(f"count:{graph.run.tag}", self.name, {"answers": answers.output},
                       [answers.id], output=answers.output + ".count.json"))

    def run(self, runner, step, extra=None):
        if self.done(runner, step):  # a step that is done only notes it (here: nothing to note)
            return
        n = len(json.loads(Path(step.args["answers"]).read_text()))
        Path(step.output).write_text(json.dumps({"records": n}))
        runner.executed.append(step.id)

    def done(self, runner, step):
        return Path(step.output).exists()

    def describe(self, step):
        return " (counts the answers)"


KIND = Count()
'''


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    from safeeraser.pipeline import kinds

    package = tmp_path / "toykinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "count.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(kinds.REGISTRY, "count", "toykinds.count")  # the one registry line
    kinds.kind.cache_clear()
    yield
    kinds.kind.cache_clear()
    sys.modules.pop("toykinds.count", None)


def test_a_toy_kind_is_planned_run_skipped_and_shown(toy_kind, tmp_path, vanilla_dir, mini_dir):
    from safeeraser.pipeline.experiment import load_experiment, run_experiment
    from safeeraser.pipeline.launchers.plan import describe
    from safeeraser.pipeline.launchers.ray_launcher import RayLauncher

    cfg = {"name": "t", "workdir": str(tmp_path / "work"), "methods": [],
           "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                    "prompt": str(mini_dir / "prompt.json")},
           "model": {"vanilla": str(vanilla_dir)}, "infer": {"batch_size": 16, "max_new_tokens": 4, "seed": 0},
           "judge": {"name": "keyword"}, "specificity": None}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _, runner = run_experiment(path, log=lambda *_: None)
    (made,) = (tmp_path / "work" / "infer").glob("*_val_*.json.count.json")
    assert json.loads(made.read_text()) == {"records": len(json.loads((mini_dir / "all_val.json").read_text()))}
    assert [e for e in runner.executed if e.startswith("count:")] == [f"count:{runner.runs()[0].tag}"]
    _, again = run_experiment(path, log=lambda *_: None)
    assert again.executed == []  # done: not run again
    plan = describe(load_experiment(path))
    assert f"  done  count:{runner.runs()[0].tag} (counts the answers)" in plan
    assert RayLauncher(load_experiment(path, ["launcher.name=ray"]), log=lambda *_: None).resources("count")[0] == 0


def test_a_kind_with_an_unknown_gpu_role_is_refused(monkeypatch):
    from safeeraser.pipeline import kinds
    from safeeraser.pipeline.kinds.eval import KIND

    monkeypatch.setattr(KIND, "gpu_role", "many")
    kinds.kind.cache_clear()
    try:
        with pytest.raises(ValueError, match="step kind 'eval': gpu_role 'many' is not one of run, one, infer"):
            kinds.kind("eval")
    finally:
        kinds.kind.cache_clear()
