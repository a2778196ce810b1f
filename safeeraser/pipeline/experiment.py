"""`safeeraser run`: unlearn -> infer -> eval -> specificity for every method of a grid, then the
paper's table. Each step's output folder is named from a hash of its inputs, and a step whose
output exists is skipped: a rerun after a crash, or with a method added, does only what is missing.
The steps (safeeraser.pipeline.steps) run where the experiment's launcher puts them (this process, Ray
tasks, SLURM jobs: safeeraser.pipeline.launchers); the rows are then read from their outputs here."""
from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from safeeraser.attacks import AttackError
from safeeraser.attacks.spec import AttackSpec, parse_attack
from safeeraser.benchmarks import REGISTRY as BENCHMARKS, benchmark_for
from safeeraser.eval import stats_path_for
from safeeraser.eval.agreement import compare
from safeeraser.eval.bootstrap import judged_values
from safeeraser.eval.degenerate import degenerate_by_view
from safeeraser.eval.judges import JudgeConfigError, JudgeOptionError, judge_class, options_from_config
from safeeraser.eval.reference_rules import AGGREGATES
from safeeraser.infer.settings import SettingError, check_block
from safeeraser.io import read_json_records
from safeeraser.models.families import REGISTRY
from safeeraser.models.tiny import SIZES
from safeeraser.numerics import MODES, pin
from safeeraser.pipeline.html_report import write_html
from safeeraser.pipeline.kinds.prepare import pending, prepare
from safeeraser.pipeline.launchers import LAUNCHERS, make_launcher
from safeeraser.pipeline.report import markdown_table, write_report
from safeeraser.pipeline.rows import add_degenerate, combine_seeds, intervals, pd_effect, row_from
from safeeraser.pipeline.steps import call, plan_steps
from safeeraser.provenance import (digest, environment, environment as current, file_sha256, folder_identity,
                                   weights_identity)
from safeeraser.specificity.chat_grader import ChatGrader
from safeeraser.train.config import CONFIG_DIR, TrainRequest, identity_config
from safeeraser.train.config import ConfigError
from safeeraser.train.methods import METHOD_NAMES, parse_method

VANILLA = "vanilla"
ORACLE = "oracle"  # a benchmark grid's retain-only model: a row, and what forget quality compares with


@dataclass
class MiniData:
    seed: int = 0
    train_per_category: int = 6
    val_per_category: int = 3


@dataclass
class DataSection:
    train: str = "dataset/mini/all_train.json"
    val: str = "dataset/mini/all_val.json"
    prompt: str = "dataset/mini/prompt.json"
    make_mini: Any = None  # a MiniData block: generate the mini benchmark into train's folder first


@dataclass
class ModelSection:
    vanilla: str = "models/tiny-llava-vanilla"  # the model unlearning starts from (a hub id or a folder)
    make_tiny: Any = None  # {family, size, seed, out}: build the tiny base model first (family: DEFAULT_FAMILY)
    finetune: Any = None  # {config, overrides}: make `vanilla` by fine-tuning (the tiny model's vanilla step)


@dataclass
class LauncherSection:
    """Where the grid's steps run (see safeeraser.pipeline.launchers); none of it changes a result."""
    name: str = "local"  # local: one process, as before; ray: Ray tasks; slurm: SLURM jobs through submitit
    # GPUs of one unlearning step; null: 1 where the cluster has GPUs, else 0. More than 1: the step runs
    # forget under `accelerate launch` on its GPUs, with `accelerate_config`.
    gpus_per_run: Optional[int] = None
    gpus_per_infer: Optional[int] = None  # GPUs of an inference or specificity step (null: 1 where there are GPUs)
    # Each split's inference as N steps (one GPU each) on contiguous blocks of records, then their merge: the
    # merged file is the one a single step writes (answers are seeded per record), under the same name.
    infer_shards: int = 1
    gpus_per_judge: Optional[int] = None  # of a judging step (null: 1 if a judge runs a model here and GPUs exist)
    cpus_per_step: Optional[int] = None  # CPUs of a step (null: `threads`, else 1)
    accelerate_config: str = "accelerate/multi_gpu.yaml"  # a path, or a name under config/
    address: Optional[str] = None  # ray: null starts Ray on this node; "auto" or "ray://host:10001" joins a cluster
    cluster: Optional[str] = None  # slurm: submitit's cluster (null: SLURM; "local": processes on this machine)
    folder: str = "${workdir}/submitit"  # slurm: submitit's job files (its own logs, pickled calls)
    partition: Optional[str] = None  # slurm: the partition
    time_min: int = 720  # slurm: the time limit of one step's job
    mem_gb: Optional[int] = None  # slurm: memory of one step's job (null: the partition's default)
    slurm_args: dict = field(default_factory=dict)  # slurm: any other sbatch option, e.g. {account: x, qos: y}
    poll_s: Optional[float] = None  # how often the driver looks for finished steps (null: 0.2 s ray, 10 s slurm)


@dataclass
class BenchmarkSection:
    """A grid on another benchmark than SafeEraser's (safeeraser/benchmarks): every method forgets `split` of
    the benchmark in `data_path`, and every run is scored by the benchmark's own tasks (benchmark-eval)
    instead of answered and judged. Without this block the grid is SafeEraser's (`data:` and the judge)."""
    name: str = ""  # a registered benchmark (safeeraser/benchmarks: mllmu, fiubench, clear, umu)
    data_path: str = ""  # its folder as released
    split: str = ""  # the split every method forgets (forget_10, forget5, forget10, ...)
    eval_splits: list = field(default_factory=list)  # the splits scored (empty: what its paper reports for `split`)
    make_mini: Any = None  # {seed: 0, ...sizes}: write the benchmark's mini into data_path first (when missing)
    # The retain-only model forget quality is measured against, and a row of its own. With model.finetune it
    # is made there (the vanilla fine-tune without the forget split's examples); else a model folder given.
    # null: no oracle, no forget quality.
    oracle: Optional[str] = None
    refusals: Optional[str] = None  # the refusal targets of PO-like methods (null: the toolkit's, in the workdir)
    max_new_tokens: int = 50  # the benchmarks' own evaluations stop at 50


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    workdir: str = "runs/${name}"
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    forget_config: str = "forget_tiny.yaml"
    forget_overrides: list = field(default_factory=list)
    methods: list = field(default_factory=lambda: ["ga", "gapd"])
    method_overrides: dict = field(default_factory=dict)  # {method: [key=value, ...]}
    # Unlearning seeds. Empty: the training config's own seed, one run per method. Several: each
    # method is unlearned (and answered, judged) once per seed, and the table gives mean ± sd.
    seeds: list = field(default_factory=list)
    infer: dict = field(default_factory=dict)  # InferSettings fields, e.g. {batch_size: 32, max_new_tokens: 64}
    judge: dict = field(default_factory=lambda: {"name": "keyword"})  # or {name: openai, model: gpt-4o, ...}
    # Other judges run over the same answers, to report how far each agrees with `judge`
    # (Cohen's kappa per metric): e.g. [{name: keyword}] beside the mini's exact judge.
    agreement: list = field(default_factory=list)
    # torch's CPU threads for the whole run. Results on a CPU depend on them (reductions split
    # differently), so a run that must reproduce elsewhere fixes them; null keeps torch's default.
    threads: Any = None
    # The CPU code path of torch's kernels (safeeraser.numerics): native, or avx2 for the same report on any
    # x86-64 CPU with AVX2. Set in this process before torch loads; the runs' configs carry it.
    numerics: str = "native"
    bootstrap: dict = field(default_factory=lambda: {"resamples": 2000, "seed": 0})  # the 95% intervals
    specificity: Any = field(default_factory=lambda: {"benchmarks": "all", "data_root": "builtin", "limit": None})
    launcher: LauncherSection = field(default_factory=LauncherSection)  # where the steps run: not in the report's config
    # Recovery attacks on every run's model ("KIND:VARIANT", e.g. jailbreak:role_play): each answered and
    # judged on both splits, with its own rows and PD's paired effect in the report (safeeraser/attacks/)
    attacks: list = field(default_factory=list)
    benchmark: Optional[BenchmarkSection] = None  # another benchmark's grid (null: SafeEraser's)


def config_chain(path: Path, seen: tuple = ()) -> list:
    """The YAML of an experiment config, after the configs it extends (`extends: OTHER.yaml`, found beside
    it or among the built-in experiments): a variant of a grid states only what it changes."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: key 'extends': a loop ({' -> '.join(str(s) for s in (*seen, path.resolve()))})")
    own = OmegaConf.load(path)
    base = own.pop("extends", None) if isinstance(own, DictConfig) else None
    if base is None:
        return [own]
    found = next((c for c in (path.parent / str(base), CONFIG_DIR / "experiment" / str(base)) if c.exists()), None)
    if found is None:
        raise ConfigError(f"{path}: key 'extends': experiment config '{base}' not found")
    return [*config_chain(found, (*seen, path.resolve())), own]


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Any:
    p = Path(path)
    if not p.exists() and (CONFIG_DIR / "experiment" / p).exists():
        p = CONFIG_DIR / "experiment" / p
    if not p.exists():
        raise ConfigError(f"experiment config '{path}' not found")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), *config_chain(p),
                              OmegaConf.from_dotlist(list(overrides)))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{p}: {f'key {key!r}: ' if key else ''}{str(exc).splitlines()[0]}") from None
    except yaml.YAMLError as exc:  # OmegaConf parses with PyYAML and lets its errors through
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    for m in cfg.methods:
        if m not in METHOD_NAMES or m == "sft":
            raise ConfigError(f"{p}: key 'methods': unknown method '{m}'. Valid choices: {', '.join(METHOD_NAMES)}")
    # Overrides of methods this run leaves out are kept for the runs that include them
    # (`methods=[ga]` on a config tuned for the whole grid), but a name no method has is a typo.
    for m in cfg.method_overrides:
        if m not in METHOD_NAMES:
            raise ConfigError(f"{p}: key 'method_overrides.{m}': unknown method '{m}'")
    if any(not isinstance(x, int) or isinstance(x, bool) for x in cfg.seeds) or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"{p}: key 'seeds': a list of distinct integers, got {list(cfg.seeds)}")
    infer_block(cfg, p)
    check_benchmark(cfg, p)
    check_launcher(cfg, p)
    check_make_tiny(cfg, p)
    attack_specs(cfg, p)
    judge_options(cfg, p, check_key=False)  # run_experiment checks the key, before any training
    for i, block in enumerate(agreement_blocks(cfg)):
        judge_options(cfg, p, check_key=False, block=block, key=f"agreement[{i}]")
    if cfg.threads is not None and (not isinstance(cfg.threads, int) or isinstance(cfg.threads, bool)
                                    or cfg.threads < 1):
        raise ConfigError(f"{p}: key 'threads': a positive integer or null, got {cfg.threads!r}")
    if cfg.numerics not in MODES:
        raise ConfigError(f"{p}: key 'numerics': one of {', '.join(MODES)}, got {cfg.numerics!r}")
    if not isinstance(cfg.bootstrap.get("resamples"), int) or cfg.bootstrap.resamples < 100:
        raise ConfigError(f"{p}: key 'bootstrap.resamples': an integer of at least 100")
    return cfg


def infer_block(cfg, where: str | Path = "experiment") -> dict:
    """The `infer:` block typed and checked against InferSettings, each problem naming its key."""

    try:
        return check_block(OmegaConf.to_container(cfg.infer))
    except SettingError as exc:
        raise ConfigError(f"{where}: key 'infer.{exc.key}': {exc.message}") from None


def check_benchmark(cfg, where: str | Path = "experiment") -> None:
    """The `benchmark:` block: a registered benchmark with evaluation tasks, a split it forgets, splits it has,
    a mini generator's own arguments; no method or attack that needs what only SafeEraser's data has."""
    b = cfg.benchmark
    if b is None:
        return

    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{where}: key '{key}': {msg}")

    need(b.name in BENCHMARKS and b.name != "safeeraser", "benchmark.name",
         f"unknown benchmark '{b.name}'. Valid choices: {', '.join(n for n in BENCHMARKS if n != 'safeeraser')} "
         "(SafeEraser's grid is the one without a benchmark block)")
    bench = benchmark_for(b.name)
    need(bench.eval_items is not None and bench.training_items is not None, "benchmark.name",
         f"{b.name} has no evaluation tasks or training items yet")
    problem = bench.forget_split_problem(b.split)
    need(problem is None, "benchmark.split", problem)
    need(bool(b.data_path), "benchmark.data_path", f"{b.name}'s folder as released")
    for i, split in enumerate(b.eval_splits):
        problem = bench.split_problem(str(split))
        need(problem is None, f"benchmark.eval_splits[{i}]", problem)
    need(bool(b.eval_splits) or bench.eval_splits is not None, "benchmark.eval_splits",
         f"{b.name} names no splits of its own to score: list them")
    need(b.max_new_tokens >= 1, "benchmark.max_new_tokens", f"at least 1, got {b.max_new_tokens}")
    if b.make_mini is not None:
        need(isinstance(b.make_mini, DictConfig), "benchmark.make_mini", "a block of the mini generator's arguments")
        accepted = set(inspect.signature(bench.make_mini).parameters) - {"out"}
        unknown = sorted(set(b.make_mini) - accepted)
        need(not unknown, f"benchmark.make_mini.{unknown[0] if unknown else ''}",
             f"not an argument of {b.name}'s mini generator ({', '.join(sorted(accepted))})")
    for m in cfg.methods:  # before any training: a run's own config check comes after the vanilla fine-tune
        problem = bench.pd_problem(m, "pd" in parse_method(m).data_views())  # as a run's own check decides
        need(problem is None, "methods", problem)
    need(not cfg.attacks, "attacks", f"the recovery attacks answer SafeEraser's records; none runs on {b.name} yet")


def model_identity(model) -> dict | str:
    """A model folder's identity (its config hash, weight files' size and time: provenance.weights_identity),
    or a hub id as written."""
    return weights_identity(Path(model)) if Path(model).is_dir() else str(model)


def check_launcher(cfg, where: str | Path = "experiment") -> None:
    la = cfg.launcher
    if la.name not in LAUNCHERS:
        raise ConfigError(f"{where}: key 'launcher.name': unknown launcher '{la.name}'. "
                          f"Valid choices: {', '.join(LAUNCHERS)}")
    for key in ("gpus_per_run", "gpus_per_infer", "gpus_per_judge"):
        if la[key] is not None and la[key] < 0:
            raise ConfigError(f"{where}: key 'launcher.{key}': 0 or more GPUs (null: automatic), got {la[key]}")
    for key in ("infer_shards", "cpus_per_step", "time_min"):
        if la[key] is not None and la[key] < 1:
            raise ConfigError(f"{where}: key 'launcher.{key}': a positive integer, got {la[key]}")
    if la.poll_s is not None and not la.poll_s > 0:
        raise ConfigError(f"{where}: key 'launcher.poll_s': seconds between looks for finished steps, more than 0 "
                          f"(null: the launcher's default), got {la.poll_s}")


def attack_specs(cfg, where: str | Path = "experiment") -> list[AttackSpec]:
    """The experiment's attacks (safeeraser/attacks/spec.py), each checked against the attack registry."""

    items = OmegaConf.to_container(cfg.attacks) if cfg.get("attacks") else []
    out = []
    for i, item in enumerate(items):
        try:
            out += parse_attack(item)
        except AttackError as exc:
            raise ConfigError(f"{where}: key 'attacks[{i}]': {exc} (write KIND:VARIANT, or {{attack: KIND:VARIANT, "
                              f"options: {{...}}}})") from None
    labels = [spec.label for spec in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: key 'attacks': an attack is listed twice")
    return out


MAKE_TINY_KEYS = ("family", "size", "seed", "out")


def check_make_tiny(cfg, where: str | Path = "experiment") -> None:
    """`model.make_tiny`: known keys, a registered family, a size the tiny builder has, an integer seed."""

    block = cfg.model.make_tiny
    if block is None:
        return
    unknown = sorted(set(block) - set(MAKE_TINY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: key 'model.make_tiny.{unknown[0]}': unknown; its keys are {', '.join(MAKE_TINY_KEYS)}")
    if "out" not in block:
        raise ConfigError(f"{where}: key 'model.make_tiny.out': missing (the folder the tiny base model is saved in)")
    if block.get("family") is not None and block.family not in REGISTRY:
        raise ConfigError(f"{where}: key 'model.make_tiny.family': unknown family '{block.family}'. Valid choices: "
                          f"{', '.join(REGISTRY)}")
    if block.get("size", "tiny") not in SIZES:
        raise ConfigError(f"{where}: key 'model.make_tiny.size': unknown size '{block.size}'. Valid choices: "
                          f"{', '.join(SIZES)}")
    seed = block.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{where}: key 'model.make_tiny.seed': an integer, got {seed!r}")


def agreement_blocks(cfg) -> list[dict]:
    """The `agreement:` judges as judge blocks ("keyword" is short for {name: keyword})."""
    blocks = []
    for item in cfg.agreement:
        block = {"name": item} if isinstance(item, str) else OmegaConf.to_container(item)
        blocks.append(block)
    return blocks


def judge_options(cfg, where: str | Path = "experiment", check_key: bool = True, block: dict | None = None,
                  key: str = "judge") -> tuple[str, dict]:
    """(judge name, make_judge arguments) from the `judge:` block (or another judge block), through the
    judge registry. Raises ConfigError naming the key, with check_key the API key where the judge needs one."""

    block = OmegaConf.to_container(cfg.judge) if block is None else block
    block, aggregate = split_aggregate(block)
    if aggregate not in AGGREGATES:
        raise ConfigError(f"{where}: key '{key}.aggregate': {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    try:
        return options_from_config(block, check_key=check_key)
    except JudgeOptionError as exc:
        raise ConfigError(f"{where}: key '{key}.{exc.key}': {exc.message}") from None


def check_judged_data(cfg, where: str | Path = "experiment") -> None:
    """Each judge takes the experiment's data (the truth judge only the mini's), checked on the data files
    that exist now (make_mini writes the mini later): before any training, not at the first judging step.
    Another benchmark's grid judges nothing."""

    if cfg.benchmark is not None:
        return
    judges = [("judge", judge_options(cfg, where, check_key=False)[0])]
    judges += [(f"agreement[{i}]", b["name"]) for i, b in enumerate(agreement_blocks(cfg))]
    files = [Path(f) for f in (cfg.data.train, cfg.data.val) if f and Path(f).is_file()]
    for key, name in judges:
        for file in files:
            try:
                judge_class(name).check_data(read_json_records(file), str(file))
            except JudgeConfigError as exc:
                raise ConfigError(f"{where}: key '{key}': {exc}") from None


def split_aggregate(block: dict) -> tuple[dict, str]:
    """A judge block without its `aggregate` key (how the stats are counted: ours, or also the reference's,
    eval/reference_rules.py), and that key's value."""
    block = dict(block)
    return block, block.pop("aggregate", "ours")


def mmvet_grader(cfg, cache_path: Path):
    """MM-Vet is graded by the experiment's judge when that judge grades answers (a served chat model);
    with any other judge it stays unscored."""

    name, kwargs = judge_options(cfg)
    if not judge_class(name).grades_mmvet or kwargs.get("backend", "server") != "server":
        return None
    from dataclasses import replace

    settings = kwargs["settings"]
    return ChatGrader(replace(settings, model=settings.model or judge_class(name).default_model), cache_path)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


class StepMissing(RuntimeError):
    """The report was being assembled, and a step's output is not there (the step did not run)."""


@dataclass
class RunPlan:
    """One row's run: the vanilla model, or a method unlearned at a seed (None: the training config's)."""
    method: str
    seed: Optional[int]
    tag: str  # names every output of the run
    ckpt: Optional[Path] = None  # the unlearned model's folder (None: the vanilla model itself)
    train: Any = None  # the forget step's TrainRequest (save_dir aside)
    model: Optional[str] = None  # the model it answers with, when not the vanilla one (the oracle)


class Runner:
    """One experiment: the names of its steps' outputs (`runs`, `infer_path`, `eval_target`, `spec_path`),
    the shared inputs (`prepare_inputs`), what the steps did (`executed`, `note_reuse`) and the rows
    assembled from their outputs (`rows`). The steps themselves are the kinds' (pipeline/kinds/): each
    makes its hash-named output, or notes the reuse of the one that exists."""

    def __init__(self, cfg, log=print):
        self.cfg = cfg
        self.work = Path(cfg.workdir)
        self.attacks = {spec.label: spec for spec in attack_specs(cfg)}  # label -> the attack
        self.log = log
        self.executed: list[str] = []  # steps that did work in this run (the rest were found done)
        # per method: one {split: {metric: [(num, den) per record]}} per run (seed), for the intervals
        # method -> run tag -> judged values: a run's row made twice (rows() called again) replaces its
        # values, never adds a second copy that intervals would count twice
        # (attack label or None, method) -> run tag -> per split the judged values of the run's rows
        self.values: dict[tuple, dict[str, dict]] = {}
        self.reused_notes: list[str] = []  # finished steps reused although other code or packages made them
        self.validate_paths = True  # a plan printed before the data exists names steps without checking it
        # Another benchmark than SafeEraser (its runs scored by its own tasks), or None: answered and judged
        self.bench = None if cfg.get("benchmark") is None else benchmark_for(cfg.benchmark.name)
        self._data_identity: str | None = None  # data_identity(), once the benchmark's folder exists

    @property
    def judging(self) -> bool:
        """Whether the grid is SafeEraser's: runs answer its records and a judge labels the answers."""
        return self.bench is None

    def note_reuse(self, what: str, environment: dict | None) -> None:
        """A finished step is reused by its hash name; if other code or other package versions made it,
        say so (in the log and in report.json) instead of mixing silently."""

        if environment is None:
            self.reused_notes.append(f"{what}: made before steps recorded their provenance")
            return
        now, then = current(), environment
        changes = []
        if then.get("code", {}).get("commit") != now["code"]["commit"]:
            changes.append(f"code {then.get('code', {}).get('commit', '?')[:10]} -> {now['code']['commit'][:10]}")
        changes += [f"{k} {then.get('packages', {}).get(k)} -> {v}" for k, v in now["packages"].items()
                    if then.get("packages", {}).get(k) != v]
        if then.get("torch_threads") != now["torch_threads"]:
            changes.append(f"torch threads {then.get('torch_threads')} -> {now['torch_threads']}")
        was, is_ = then.get("numerics", {}).get("mode", "native"), now["numerics"]["mode"]
        if was != is_:
            changes.append(f"numerics {was} -> {is_}")
        if changes:
            note = f"{what}: reused, made with {'; '.join(changes)} (delete it to remake)"
            self.log(f"note: {note}")
            self.reused_notes.append(note)

    # --- shared inputs --------------------------------------------------------------------------
    def finetune_request(self, oracle: bool = False):
        """The vanilla fine-tune's TrainRequest (None: the vanilla model is given, not made); with `oracle`, the
        benchmark grid's retain-only model's (the same fine-tune without the forget split's examples)."""

        d, m = self.cfg.data, self.cfg.model
        if m.finetune is None or (oracle and self.oracle_path() is None):
            return None
        data = {"data_path": [str(d.train), str(d.val)]} if self.judging else self.benchmark_data()
        return TrainRequest(m.finetune.config, tuple(m.finetune.get("overrides", [])),
                            {"save_dir": str(self.oracle_path() if oracle else m.vanilla), **data, "overwrite": True,
                             **({"teach": "retain"} if oracle else {}), **self.numerics_settings()})

    def benchmark_data(self) -> dict:
        """A training config's data settings on the grid's benchmark: its folder and the split to forget."""
        b = self.cfg.benchmark
        return {"benchmark": b.name, "data_path": str(b.data_path), "split": b.split}

    def oracle_path(self) -> Path | None:
        b = self.cfg.get("benchmark")
        return None if b is None or b.oracle is None else Path(b.oracle)

    def refusals_path(self) -> Path:
        """A benchmark grid's refusal targets: the file given, or the toolkit's written into the workdir."""
        b = self.cfg.benchmark
        return Path(b.refusals) if b.refusals else self.work / "refusals.json"

    def eval_splits(self) -> list[str]:
        b = self.cfg.benchmark
        return [str(s) for s in b.eval_splits] if b.eval_splits else list(self.bench.eval_splits(b.split))

    def numerics_settings(self) -> dict:
        """The experiment's numerics for a training config: none when native (run names stay as they were)."""
        return {} if self.cfg.numerics == "native" else {"numerics": self.cfg.numerics}

    def pending_inputs(self) -> list[str]:
        """What the prepare step would make (kinds/prepare.py), found without making it."""
        return pending(self)

    def prepare_inputs(self) -> None:
        """The shared inputs made (the prepare step's body, in this process)."""
        prepare(self)

    def vanilla_identity(self) -> dict | str:
        """What every step starting from the vanilla model is keyed by: its folder's identity (config hash,
        weight files' size and time), so a vanilla model made again is never matched with results of
        the old one; a hub id stands for itself."""

        return model_identity(self.cfg.model.vanilla)

    # --- the names of the outputs ----------------------------------------------------------------
    def plan_run(self, method: str, seed: int | None = None) -> RunPlan:
        if method == VANILLA:
            return RunPlan(VANILLA, None, f"{VANILLA}-{_digest(self.vanilla_identity())}")
        if method == ORACLE:
            oracle = self.oracle_path()
            return RunPlan(ORACLE, None, f"{ORACLE}-{_digest(model_identity(oracle))}", model=str(oracle))

        d = self.cfg.data
        data = ({"data_path": str(d.train), "idk_path": str(d.prompt)} if self.judging
                else {**self.benchmark_data(), "idk_path": str(self.refusals_path())})
        request = TrainRequest(self.cfg.forget_config,
                               (*self.cfg.forget_overrides, *self.cfg.method_overrides.get(method, [])),
                               {**self.numerics_settings(), "forget_loss": method, "model_path": str(self.cfg.model.vanilla),
                                **data, **({"seed": seed} if seed is not None else {})})
        probe = request.load(validate_paths=self.validate_paths, save_dir=".")
        resolved = identity_config(OmegaConf.to_container(probe))
        resolved.pop("save_dir")
        tag = f"{method}-{_digest({'config': resolved, 'vanilla': self.vanilla_identity()})}"
        return RunPlan(method, seed, tag, self.work / "forget" / tag, request)

    def seeds_of(self, method: str) -> list:
        """The seeds a method's row is made of: [None] for one run at the training config's seed (the vanilla
        model is not unlearned: one run whatever the seeds)."""
        seeds = list(self.cfg.seeds) if method not in (VANILLA, ORACLE) else []
        return seeds if seeds else [None]

    def row_methods(self) -> list[str]:
        """The table's rows: the vanilla model, the oracle where a benchmark grid has one, each method."""
        return [VANILLA, *([ORACLE] if self.oracle_path() is not None else []), *self.cfg.methods]

    def runs(self) -> list[RunPlan]:
        return [self.plan_run(m, s) for m in self.row_methods() for s in self.seeds_of(m)]

    def scores_path(self, run: RunPlan) -> Path:
        """A benchmark grid's run scored on its splits: named from the splits, the generation length, the
        benchmark's folder and files, and the vanilla model (the run's tag names its training)."""
        b = self.cfg.benchmark
        named = {"splits": self.eval_splits(), "max_new_tokens": b.max_new_tokens, "data": str(b.data_path),
                 "files": self.data_identity(), "model": self.vanilla_identity(),
                 "batch": self.cfg.infer.get("batch_size")}
        return self.work / "scores" / f"{run.tag}_{_digest(named)}.json"

    def data_identity(self) -> str | None:
        """The benchmark folder's identity (provenance.folder_identity), walked once per runner once the folder
        exists: every run's score step and row is named by it, and a released benchmark holds thousands of
        images. None before the prepare step writes the folder (a plan printed first)."""
        if self._data_identity is None:
            self._data_identity = folder_identity(self.cfg.benchmark.data_path)
        return self._data_identity

    def infer_path(self, tag: str, split: str, attack: str | None = None) -> Path:
        """The run's answers to a split, or (`attack`, a label of the experiment's attacks) its answers to the
        attacked records: named from the inference flags, the vanilla model and the data (and the attack)."""
        named = {"flags": dict(self.cfg.infer), "model": self.vanilla_identity(), "data": self.cfg.data[split]}
        if attack is None:
            return self.work / "infer" / f"{tag}_{split}_{_digest(named)}.json"
        key = _digest({**named, "attack": attack})
        return self.work / "attacks" / f"{tag}_{split}_{self.attacks[attack].slug}_{key}.json"

    def eval_target(self, answers: Path, block: dict | None = None) -> tuple[str, dict, Path]:
        """(judge name, make_judge arguments, the judged file) of `answers` judged by the experiment's judge
        (or `block`). Named from the answers' content too: answers made again (e.g. once a broken image is
        fixed) are judged again, never matched with the stats of the earlier ones."""

        name, kwargs, extra = self.judge(block)
        key = _digest({"judge": extra, "answers": file_sha256(answers)})
        return name, kwargs, self.work / "eval" / f"{answers.stem}_{name}_{key}_rr.json"

    def spec_path(self, tag: str) -> Path | None:
        spec = self.cfg.specificity
        if spec is None:
            return None
        # Named from its settings too: another benchmark list, limit or data root is another result.
        return self.work / "specificity" / f"{tag}_{_digest(OmegaConf.to_container(spec))}"

    # --- the steps ------------------------------------------------------------------------------
    def judge(self, block: dict | None = None) -> tuple[str, dict, dict]:
        """(name, make_judge arguments, the options that name the judge's output: no secrets)."""
        block = OmegaConf.to_container(self.cfg.judge) if block is None else block
        name, kwargs = judge_options(self.cfg, block=block)
        extra = {k: v for k, v in block.items() if k not in ("name", "api_key")}
        return name, kwargs, extra

    def aggregate(self, block: dict | None = None) -> str:
        return split_aggregate(OmegaConf.to_container(self.cfg.judge) if block is None else block)[1]

    # --- the rows, from the steps' outputs alone ---------------------------------------------------
    def scores_of(self, run: RunPlan) -> dict:
        """A benchmark grid's run's scores (its score step's file), {split: {score: value, answers, ...}}."""
        return json.loads(self._made(self.scores_path(run), "score").read_text())["scores"]

    def _made(self, path: Path, step: str) -> Path:
        if not path.exists():
            raise StepMissing(f"{step}: {path} is missing")
        return path

    def judged(self, answers: Path, block: dict | None = None) -> tuple[dict, Path]:
        _, _, out = self.eval_target(answers, block)
        return json.loads(self._made(stats_path_for(out), "eval").read_text()), out

    def agreement(self, answers: dict[str, Path], judged: dict[str, Path]) -> dict:
        """Per agreement judge: its labels against the experiment judge's on both splits."""

        result = {}
        for block in agreement_blocks(self.cfg):
            other = {split: self.judged(answers[split], block)[1] for split in answers}
            # without the two files' paths: those name steps by the vanilla folder's identity, which
            # differs between machines, and report rows must not
            result[block["name"]] = {split: {k: v for k, v in compare(judged[split], other[split]).items()
                                             if k not in ("a", "b")} for split in answers}
        return result

    def row(self, run: RunPlan, attack: str | None = None) -> dict:
        """The run's row from its judged answers (under `attack`, a label of the experiment's attacks: the
        answers to the attacked records, without specificity or agreement)."""

        answers = {split: self._made(self.infer_path(run.tag, split, attack), "infer" if attack is None else "attack")
                   for split in ("train", "val")}
        evaluated = {split: self.judged(answers[split]) for split in answers}
        stats = {split: s for split, (s, _) in evaluated.items()}
        judged = {split: path for split, (_, path) in evaluated.items()}
        values = {split: judged_values(read_json_records(path), str(path)) for split, path in judged.items()}
        self.values.setdefault((attack, run.method), {})[run.tag] = values
        spec = self.spec_path(run.tag) if attack is None else None
        spec = None if spec is None else json.loads(self._made(spec / "specificity.json", "specificity").read_text())
        row = row_from(run.method, stats, spec)
        row["ci"], row["ci_notes"] = intervals(values, self.cfg.bootstrap)
        add_degenerate(row, {split: degenerate_by_view(read_json_records(path), str(path))
                             for split, path in answers.items()})
        if self.cfg.agreement and attack is None:
            row["agreement"] = self.agreement(answers, judged)
        return row

    def method_row(self, method: str, attack: str | None = None) -> dict:
        """The method's row: one run, or the mean ± sd over the experiment's seeds (under `attack`: its
        answers to the attacked records)."""
        seeds = self.seeds_of(method)
        if len(seeds) < 2:
            return self.row(self.plan_run(method, seeds[0]), attack)
        row = combine_seeds(method, seeds, [self.row(self.plan_run(method, s), attack) for s in seeds])
        row["ci"], row["ci_notes"] = intervals(list(self.values[attack, method].values()), self.cfg.bootstrap)
        return row

    def table(self, rows: list[dict]) -> str:
        """The rows as the terminal shows them."""
        if not self.judging:
            from safeeraser.pipeline.benchmark_rows import markdown  # deferred: it imports this module

            return markdown(rows)
        return markdown_table(rows)

    def rows(self, attack: str | None = None) -> list[dict]:
        if not self.judging:
            from safeeraser.pipeline.benchmark_rows import benchmark_rows  # deferred: it imports this module

            return benchmark_rows(self)
        return [self.method_row(m, attack) for m in [VANILLA, *self.cfg.methods]]

    def attack_tables(self) -> dict[str, dict]:
        """Per attack of the experiment: its rows and PD's paired effect on them."""
        return {label: {"rows": self.rows(label), "pd_effects": self.pd_effects(label)} for label in self.attacks}

    def attack_curves(self) -> dict[str, dict]:
        """Per swept attack (attacks/spec.py): the option swept, its values and the attacks' labels, in order."""
        out: dict[str, dict] = {}
        for label, spec in self.attacks.items():
            if spec.sweep is not None:  # two sweeps of one attack over different options are two curves
                curve = out.setdefault(f"{spec.curve} against {spec.sweep}",
                                       {"option": spec.sweep, "values": [], "labels": []})
                curve["values"].append(spec.options[spec.sweep])
                curve["labels"].append(label)
        return out

    def run(self) -> list[dict]:
        """Every step in this process, one after another, then the rows."""
        self.prepare_inputs()
        for step in plan_steps(self):
            call(step, self)
        return self.rows()

    def pd_effects(self, attack: str | None = None) -> list[dict]:
        """For every method run with and without PD: the +PD minus base difference of each rate on the
        same records, with a paired bootstrap interval (over several seeds: seeds and records resampled,
        a seed's two runs kept together); under `attack`, of the answers to the attacked records."""
        values = {method: runs for (label, method), runs in self.values.items() if label == attack}
        return [pd_effect(base, list(values[base].values()), list(values[f"{base}pd"].values()), self.cfg.bootstrap)
                for base in self.cfg.methods if f"{base}pd" in values and base in values]


def run_experiment(path: str | Path, overrides: list[str] = (), log=print,
                   launcher: str | None = None) -> tuple[list[dict], Runner]:
    """Run the grid's steps with the experiment's launcher (`launcher` overrides its `launcher.name`), then
    assemble the report from their outputs. A step that fails under a remote launcher does not stop the
    others: StepsFailed names it (and its log) once every other step has run, and no report is written."""
    cfg = load_experiment(path, [*overrides, *([f"launcher.name={launcher}"] if launcher else [])])
    judge_options(cfg, path)  # a judge that cannot run (no API key) must fail now, not after hours of training
    for i, block in enumerate(agreement_blocks(cfg)):
        judge_options(cfg, path, block=block, key=f"agreement[{i}]")
    check_judged_data(cfg, path)
    pin(cfg.numerics)  # before torch loads, here and in every process the steps start (they inherit it)
    if cfg.threads is not None:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    runner = Runner(cfg, log=log)
    with make_launcher(cfg, log) as launch:
        launch.prepare(runner)
        launch.run(plan_steps(runner), runner)
    rows = runner.rows()
    config = OmegaConf.to_container(cfg)
    where = config.pop("launcher")  # where the steps ran changes no result: not part of the config's hash
    if not config.get("attacks"):  # a key added later, at its neutral value: reports made before keep their hash
        config.pop("attacks", None)
    if not config.get("benchmark"):  # the same: SafeEraser's grid, named as before the key was added
        config.pop("benchmark", None)
    # A run over seeds is another table, and so is a run with attacks: neither replaces the plain report.
    stem = "report" if len(cfg.seeds) < 2 else "report-seeds-" + "-".join(str(s) for s in cfg.seeds)
    stem += "-attacks" if runner.attacks else ""
    head = {"config": config, "config_sha256": digest(config)}
    meta = {"provenance": environment(), "launcher": where["name"], "seconds": time.perf_counter() - t0,
            "executed": runner.executed, "reused_from_other_code": runner.reused_notes}
    if not runner.judging:
        from safeeraser.pipeline.benchmark_rows import write_benchmark_report  # deferred: it imports this module

        files = write_benchmark_report(rows, runner.work, f"{runner.bench.name}: {cfg.name}", stem,
                                       {**head, "benchmark": runner.bench.name, "splits": runner.eval_splits(), **meta})
        log(f"report: {', '.join(str(f) for f in files)}")
        runner.report_path = files[0]
        return rows, runner
    name, _, _ = runner.judge()
    judge = {"name": name, "prompt_version": getattr(judge_class(name), "prompt_version", None)}
    files = write_report(rows, runner.work, title=f"SafeEraser: {cfg.name}", stem=stem, pd=runner.pd_effects(),
                         attacks=runner.attack_tables(), curves=runner.attack_curves(),
                         meta={**head, "judge": judge, **meta})
    files.append(write_html(runner, runner.work / f"{stem}.json"))  # the tables and every answer, one page
    log(f"report: {', '.join(str(f) for f in files)}")
    runner.report_path = runner.work / f"{stem}.json"  # what `run --compare` reads
    return rows, runner
