"""prepare: the shared inputs (the mini data, the tiny model, the vanilla fine-tune), when any is missing.
Not planned per run: the launcher runs it first, as every other step's name depends on what it makes."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from safeeraser.data.mini import make_mini
from safeeraser.data.refusals import DEFAULT_REFUSALS
from safeeraser.io import ConfigError, atomic_write_json
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


def data_missing(runner) -> bool:
    """Whether the experiment's mini data is to be written: SafeEraser's, or the benchmark grid's."""
    if not runner.judging:
        b = runner.cfg.benchmark
        return b.make_mini is not None and not Path(b.data_path).exists()
    d = runner.cfg.data
    return d.make_mini is not None and not Path(d.val).exists()


def refusals_missing(runner) -> bool:
    """Whether a benchmark grid's refusal targets are to be written (the toolkit's, in the workdir)."""
    return not runner.judging and not runner.cfg.benchmark.refusals and not runner.refusals_path().exists()


def trained_models(runner) -> list[tuple[str, str, object]]:
    """(step name, folder, TrainRequest) of each model the prepare step fine-tunes: the vanilla model, and a
    benchmark grid's retain-only oracle. An oracle that is neither made nor there is an error."""
    oracle = runner.oracle_path()
    if oracle is not None and runner.cfg.model.finetune is None and not oracle.is_dir():
        raise ConfigError(f"key 'benchmark.oracle': folder '{oracle}' not found (without model.finetune the oracle "
                          "is not made here: give a model trained without the forget split, or null)")
    out = []
    for what, oracle in (("finetune", False), ("finetune-oracle", True)):
        request = runner.finetune_request(oracle=oracle)
        if request is not None:
            out.append((what, request.settings["save_dir"], request))
    return out


def pending(runner) -> list[str]:
    """What prepare would make, found without making it (a tiny model of another family is an error)."""
    m = runner.cfg.model
    todo = ["make-mini"] if data_missing(runner) else []
    if refusals_missing(runner):
        todo.append("refusals")
    if m.make_tiny is not None and (Path(m.make_tiny.out) / "config.json").exists():
        check_tiny_family(runner)
    elif m.make_tiny is not None:
        todo.append("make-tiny")
    for what, folder, request in trained_models(runner):
        done = (Path(folder) / "run_complete.json").exists()
        if not done or stale_settings(request, folder):
            todo.append(what)
    if runner.judging and m.finetune is not None and "finetune" not in todo and not (Path(m.vanilla) / CHECK_FILE).exists():
        todo.append("vanilla-check")
    return todo


def make_data(runner) -> None:
    """The mini data (SafeEraser's, or the benchmark grid's in its released format) and a benchmark grid's
    refusal targets, where missing."""
    if data_missing(runner):
        if runner.judging:
            from safeeraser.pipeline.experiment import MiniData  # deferred: pipeline.experiment imports this module

            d = runner.cfg.data
            mini = OmegaConf.merge(OmegaConf.structured(MiniData), d.make_mini)
            make_mini(Path(d.train).parent, seed=mini.seed, train_per_category=mini.train_per_category,
                      val_per_category=mini.val_per_category)
        else:
            b = runner.cfg.benchmark
            runner.bench.make_mini(Path(b.data_path), **OmegaConf.to_container(b.make_mini))
        runner.executed.append("make-mini")
    if refusals_missing(runner):
        atomic_write_json(runner.refusals_path(), {"idk": DEFAULT_REFUSALS})
        runner.executed.append("refusals")


def prepare(runner) -> None:
    """Make what is missing: the mini benchmark, the tiny base model, the vanilla fine-tune (and a benchmark
    grid's oracle) and the vanilla model's check (a model made with other settings is made again)."""
    d, m = runner.cfg.data, runner.cfg.model
    make_data(runner)
    if m.make_tiny is not None and (Path(m.make_tiny.out) / "config.json").exists():
        check_tiny_family(runner)
    elif m.make_tiny is not None:
        make_tiny(m.make_tiny.out, family=m.make_tiny.get("family", DEFAULT_FAMILY),
                  size=m.make_tiny.get("size", "tiny"), seed=m.make_tiny.get("seed", 0))
        runner.executed.append("make-tiny")
    for what, folder, tune in trained_models(runner):
        if (Path(folder) / "run_complete.json").exists():
            changed = stale_settings(tune, folder)
            if changed:  # e.g. a longer fine-tune in a newer finetune_tiny.yaml: the old model is another model
                runner.log(f"note: the model in {folder} was made with other settings ({'; '.join(changed)}): "
                           "fine-tuning it again")
                (Path(folder) / "run_complete.json").unlink()
        if not (Path(folder) / "run_complete.json").exists():
            runner.log(f"fine-tuning {'the vanilla model' if what == 'finetune' else 'the retain-only oracle'} "
                       f"into {folder}")
            _, check = finetune(tune)
            runner.log(format_check(check))
            runner.executed.append(what)
    if runner.judging and m.finetune is not None and not (Path(m.vanilla) / CHECK_FILE).exists():
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
