"""prepare: the shared inputs (the mini data, the tiny model, the vanilla fine-tune), when any is missing.
Not planned per run: the launcher runs it first, as every other step's name depends on what it makes."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from safeeraser.data.mini import make_mini
from safeeraser.io import ConfigError
from safeeraser.models.families import DEFAULT_FAMILY
from safeeraser.models.tiny import make_tiny
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.pipeline.vanilla import CHECK_FILE, check_model, finetune, format_check, stale_settings


def check_tiny_family(runner) -> None:
    m = runner.cfg.model
    family = m.make_tiny.get("family", DEFAULT_FAMILY)
    made = json.loads((Path(m.make_tiny.out) / "config.json").read_text()).get("model_type")
    if made != family:  # never unlearn one family's model under another's name
        raise ConfigError(f"key 'model.make_tiny.out': {m.make_tiny.out} holds a '{made}' model, not "
                          f"'{family}': choose another folder for this family")


def pending(runner) -> list[str]:
    """What prepare would make, found without making it (a tiny model of another family is an error)."""
    d, m = runner.cfg.data, runner.cfg.model
    todo = ["make-mini"] if d.make_mini is not None and not Path(d.val).exists() else []
    if m.make_tiny is not None and (Path(m.make_tiny.out) / "config.json").exists():
        check_tiny_family(runner)
    elif m.make_tiny is not None:
        todo.append("make-tiny")
    if m.finetune is not None:
        done = (Path(m.vanilla) / "run_complete.json").exists()
        if not done or stale_settings(runner.finetune_request(), m.vanilla):
            todo.append("finetune")
        elif not (Path(m.vanilla) / CHECK_FILE).exists():
            todo.append("vanilla-check")
    return todo


def prepare(runner) -> None:
    """Make what is missing: the mini benchmark, the tiny base model, the vanilla fine-tune and its check
    (a vanilla model made with other settings is made again)."""
    d, m = runner.cfg.data, runner.cfg.model
    if d.make_mini is not None and not Path(d.val).exists():
        from safeeraser.pipeline.experiment import MiniData  # deferred: pipeline.experiment imports this module

        mini = OmegaConf.merge(OmegaConf.structured(MiniData), d.make_mini)
        make_mini(Path(d.train).parent, seed=mini.seed, train_per_category=mini.train_per_category,
                  val_per_category=mini.val_per_category)
        runner.executed.append("make-mini")
    if m.make_tiny is not None and (Path(m.make_tiny.out) / "config.json").exists():
        check_tiny_family(runner)
    elif m.make_tiny is not None:
        make_tiny(m.make_tiny.out, family=m.make_tiny.get("family", DEFAULT_FAMILY),
                  size=m.make_tiny.get("size", "tiny"), seed=m.make_tiny.get("seed", 0))
        runner.executed.append("make-tiny")
    tune = runner.finetune_request()
    if tune is not None and (Path(m.vanilla) / "run_complete.json").exists():
        changed = stale_settings(tune, m.vanilla)
        if changed:  # e.g. a longer fine-tune in a newer finetune_tiny.yaml: the old model is another model
            runner.log(f"note: the vanilla model in {m.vanilla} was made with other settings "
                     f"({'; '.join(changed)}): fine-tuning it again")
            (Path(m.vanilla) / "run_complete.json").unlink()
    if m.finetune is not None and not (Path(m.vanilla) / "run_complete.json").exists():
        runner.log(f"fine-tuning the vanilla model into {m.vanilla}")
        _, check = finetune(tune)
        runner.log(format_check(check))
        runner.executed.append("finetune")
    elif m.finetune is not None and not (Path(m.vanilla) / CHECK_FILE).exists():
        # trained, but stopped before its check: the check alone
        splits = {Path(p).stem.replace("all_", ""): p for p in (d.train, d.val)}
        runner.log(format_check(check_model(m.vanilla, splits)))
        runner.executed.append("vanilla-check")


class Prepare(StepKind):
    name = "prepare"
    gpu_role = "one"  # the vanilla fine-tune runs in one process

    def run(self, runner, step, extra=None):
        prepare(runner)

    @staticmethod
    def step() -> Step:
        return Step("prepare", "prepare", {}, output="the mini data, the tiny model, the vanilla model")


KIND = Prepare()
