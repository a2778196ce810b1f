"""`safeeraser run`: unlearn -> infer -> eval -> specificity for every method of a grid, then the
paper's table. Each step's output folder is named from a hash of its inputs, and a step whose
output exists is skipped: a rerun after a crash, or with a method added, does only what is missing."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from safeeraser.pipeline.columns import COLUMNS, RATES
from safeeraser.train.config import ConfigError

VANILLA = "vanilla"


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
    infer: dict = field(default_factory=dict)  # ckpt_infer flags, e.g. {batch_size: 32, max_new_tokens: 64}
    judge: dict = field(default_factory=lambda: {"name": "keyword"})  # or {name: openai, model: gpt-4o, ...}
    # Other judges run over the same answers, to report how far each agrees with `judge`
    # (Cohen's kappa per metric): e.g. [{name: keyword}] beside the mini's exact judge.
    agreement: list = field(default_factory=list)
    # torch's CPU threads for the whole run. Results on a CPU depend on them (reductions split
    # differently), so a run that must reproduce elsewhere fixes them; null keeps torch's default.
    threads: Any = None
    bootstrap: dict = field(default_factory=lambda: {"resamples": 2000, "seed": 0})  # the 95% intervals
    specificity: Any = field(default_factory=lambda: {"benchmarks": "all", "data_root": "builtin", "limit": None})


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Any:
    from safeeraser.train.config import CONFIG_DIR
    from safeeraser.train.methods import METHOD_NAMES

    p = Path(path)
    if not p.exists() and (CONFIG_DIR / "experiment" / p).exists():
        p = CONFIG_DIR / "experiment" / p
    if not p.exists():
        raise ConfigError(f"experiment config '{path}' not found")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), OmegaConf.load(p),
                              OmegaConf.from_dotlist(list(overrides)))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{p}: {str(exc).splitlines()[0]}") from None
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
    check_infer_flags(cfg, p)
    judge_options(cfg, p, check_key=False)  # run_experiment checks the key, before any training
    for i, block in enumerate(agreement_blocks(cfg)):
        judge_options(cfg, p, check_key=False, block=block, key=f"agreement[{i}]")
    if cfg.threads is not None and (not isinstance(cfg.threads, int) or isinstance(cfg.threads, bool)
                                    or cfg.threads < 1):
        raise ConfigError(f"{p}: key 'threads': a positive integer or null, got {cfg.threads!r}")
    if not isinstance(cfg.bootstrap.get("resamples"), int) or cfg.bootstrap.resamples < 100:
        raise ConfigError(f"{p}: key 'bootstrap.resamples': an integer of at least 100")
    return cfg


# Set by the pipeline itself for every inference step: not `infer:` keys.
PIPELINE_INFER_FLAGS = ("eval_file", "model_path", "checkpoint_path", "output_file", "resume")


def infer_argv(flags: dict) -> list[str]:
    argv = []
    for k, v in flags.items():
        argv += [f"--{k}"] if v is True else ([] if v is False else [f"--{k}", str(v)])
    return argv


def check_infer_flags(cfg, where) -> None:
    """The `infer:` block checked as ckpt_infer checks its flags, each problem naming its key."""
    from safeeraser.infer.ckpt_infer import build_parser, check_args
    from safeeraser.io import DataError

    parser = build_parser()
    known = {a.dest for a in parser._actions} - set(PIPELINE_INFER_FLAGS) - {"help"}
    for key in cfg.infer:
        if key not in known:
            raise ConfigError(f"{where}: key 'infer.{key}': not an inference setting; known: {', '.join(sorted(known))}")
    required = ["--eval_file", "x", "--output_file", "y"]
    try:
        args = parser.parse_args(required + infer_argv(dict(cfg.infer)))
    except SystemExit:  # argparse has printed why (a value of the wrong type or choice)
        raise ConfigError(f"{where}: key 'infer': a value ckpt_infer cannot parse (see above)") from None
    try:
        check_args(args)
    except DataError as exc:
        key = str(exc).split()[0].lstrip("-")
        raise ConfigError(f"{where}: key 'infer.{key}': {str(exc).split(' ', 1)[1]}") from None


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
    from safeeraser.eval.judges import JudgeOptionError, options_from_config

    block = OmegaConf.to_container(cfg.judge) if block is None else block
    try:
        return options_from_config(block, check_key=check_key)
    except JudgeOptionError as exc:
        raise ConfigError(f"{where}: key '{key}.{exc.key}': {exc.message}") from None


def mmvet_grader(cfg, cache_path: Path):
    """MM-Vet is graded by the experiment's judge when that judge grades answers (a served chat model);
    with any other judge it stays unscored."""
    from safeeraser.eval.judges import judge_class

    name, kwargs = judge_options(cfg)
    if not judge_class(name).grades_mmvet or kwargs.get("backend", "server") != "server":
        return None
    from dataclasses import replace

    from safeeraser.specificity.chat_grader import ChatGrader

    settings = kwargs["settings"]
    return ChatGrader(replace(settings, model=settings.model or judge_class(name).default_model), cache_path)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


class Runner:
    def __init__(self, cfg, log=print):
        self.cfg = cfg
        self.work = Path(cfg.workdir)
        self.log = log
        self.executed: list[str] = []  # steps that did work in this run (the rest were found done)
        # per method: one {split: {metric: [(num, den) per record]}} per run (seed), for the intervals
        self.values: dict[str, list[dict]] = {}
        self.reused_notes: list[str] = []  # finished steps reused although other code or packages made them

    def note_reuse(self, what: str, environment: dict | None) -> None:
        """A finished step is reused by its hash name; if other code or other package versions made it,
        say so (in the log and in report.json) instead of mixing silently."""
        from safeeraser.provenance import environment as current

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
        if changes:
            note = f"{what}: reused, made with {'; '.join(changes)} (delete it to remake)"
            self.log(f"note: {note}")
            self.reused_notes.append(note)

    # --- shared inputs --------------------------------------------------------------------------
    def prepare_inputs(self) -> None:
        from safeeraser.data.mini import make_mini
        from safeeraser.models.families import DEFAULT_FAMILY
        from safeeraser.models.tiny import make_tiny
        from safeeraser.pipeline.vanilla import CHECK_FILE, check_model, finetune, format_check, stale_settings

        d, m = self.cfg.data, self.cfg.model
        if d.make_mini is not None and not Path(d.val).exists():
            mini = OmegaConf.merge(OmegaConf.structured(MiniData), d.make_mini)
            make_mini(Path(d.train).parent, seed=mini.seed, train_per_category=mini.train_per_category,
                      val_per_category=mini.val_per_category)
            self.executed.append("make-mini")
        if m.make_tiny is not None and (Path(m.make_tiny.out) / "config.json").exists():
            import json

            family = m.make_tiny.get("family", DEFAULT_FAMILY)
            made = json.loads((Path(m.make_tiny.out) / "config.json").read_text()).get("model_type")
            if made != family:  # never unlearn one family's model under another's name
                raise ConfigError(f"key 'model.make_tiny.out': {m.make_tiny.out} holds a '{made}' model, not "
                                  f"'{family}': choose another folder for this family")
        elif m.make_tiny is not None:
            make_tiny(m.make_tiny.out, family=m.make_tiny.get("family", DEFAULT_FAMILY),
                      size=m.make_tiny.get("size", "tiny"), seed=m.make_tiny.get("seed", 0))
            self.executed.append("make-tiny")
        tune = None if m.finetune is None else [*m.finetune.get("overrides", []), f"save_dir={m.vanilla}",
                                                 f"data_path=[{d.train},{d.val}]", "overwrite=true"]
        if tune is not None and (Path(m.vanilla) / "run_complete.json").exists():
            changed = stale_settings(m.finetune.config, tune, m.vanilla)
            if changed:  # e.g. a longer fine-tune in a newer finetune_tiny.yaml: the old model is another model
                self.log(f"note: the vanilla model in {m.vanilla} was made with other settings "
                         f"({'; '.join(changed)}): fine-tuning it again")
                (Path(m.vanilla) / "run_complete.json").unlink()
        if m.finetune is not None and not (Path(m.vanilla) / "run_complete.json").exists():
            self.log(f"fine-tuning the vanilla model into {m.vanilla}")
            _, check = finetune(m.finetune.config, tune)
            self.log(format_check(check))
            self.executed.append("finetune")
        elif m.finetune is not None and not (Path(m.vanilla) / CHECK_FILE).exists():
            # trained, but stopped before its check: the check alone
            splits = {Path(p).stem.replace("all_", ""): p for p in (d.train, d.val)}
            self.log(format_check(check_model(m.vanilla, splits)))
            self.executed.append("vanilla-check")

    def vanilla_identity(self) -> dict | str:
        """What every step starting from the vanilla model is keyed by: its folder's identity (config hash,
        weight files' size and time), so a vanilla model made again is never matched with results of
        the old one; a hub id stands for itself."""
        from safeeraser.provenance import weights_identity

        vanilla = Path(self.cfg.model.vanilla)
        return weights_identity(vanilla) if vanilla.is_dir() else self.cfg.model.vanilla

    # --- per method -----------------------------------------------------------------------------
    def forget(self, method: str, seed: int | None = None) -> tuple[str, Path]:
        from safeeraser.train.config import load_config
        from safeeraser.train.loop import run_training

        d = self.cfg.data
        overrides = [*self.cfg.forget_overrides, *self.cfg.method_overrides.get(method, []),
                     f"forget_loss={method}", f"model_path={self.cfg.model.vanilla}", f"data_path={d.train}",
                     f"idk_path={d.prompt}", *([f"seed={seed}"] if seed is not None else [])]
        probe = load_config(self.cfg.forget_config, [*overrides, "save_dir=."])
        resolved = OmegaConf.to_container(probe)
        resolved.pop("save_dir")
        tag = f"{method}-{_digest({'config': resolved, 'vanilla': self.vanilla_identity()})}"
        out = self.work / "forget" / tag
        if not (out / "run_complete.json").exists():
            self.log(f"[{method}] unlearning -> {out}")
            resume = ["resume_from_checkpoint=latest"] if any(out.glob("checkpoint-*")) else []
            run_training(load_config(self.cfg.forget_config, [*overrides, f"save_dir={out}", "overwrite=true",
                                                              *resume]))
            self.executed.append(f"forget:{method}")
        else:
            from safeeraser.models.checkpoint import PROVENANCE_FILE

            made = out / PROVENANCE_FILE
            self.note_reuse(str(out), json.loads(made.read_text()).get("environment") if made.exists() else None)
        return tag, out

    def infer(self, tag: str, ckpt: Path | None, split: str) -> Path:
        from safeeraser.infer.ckpt_infer import build_parser, format_summary, meta_path, run_inference

        flags = dict(self.cfg.infer)
        key = _digest({"flags": flags, "model": self.vanilla_identity(), "data": self.cfg.data[split]})
        out = self.work / "infer" / f"{tag}_{split}_{key}.json"
        made = meta_path(out)
        skipped = json.loads(made.read_text()).get("skipped_records") if out.exists() and made.exists() else None
        if skipped:  # answers missing for records that could not be read then: not done (the input may be fixed)
            self.log(f"note: {out} lacks records {skipped} (skipped when it was made): answering again")
            out.unlink()
        if not out.exists():
            argv = ["--eval_file", self.cfg.data[split], "--model_path", self.cfg.model.vanilla,
                    "--output_file", str(out), "--resume"]
            if ckpt is not None:
                argv += ["--checkpoint_path", str(ckpt)]
            argv += infer_argv(flags)
            self.log(f"[{tag}] inference on {split}")
            self.log(format_summary(run_inference(build_parser().parse_args(argv))))
            self.executed.append(f"infer:{tag}:{split}")
        else:
            self.note_reuse(str(out), json.loads(made.read_text()).get("environment") if made.exists() else None)
        return out

    def judge(self, block: dict | None = None) -> tuple[str, dict, dict]:
        """(name, make_judge arguments, the options that name the judge's output: no secrets)."""
        block = OmegaConf.to_container(self.cfg.judge) if block is None else block
        name, kwargs = judge_options(self.cfg, block=block)
        extra = {k: v for k, v in block.items() if k not in ("name", "api_key")}
        return name, kwargs, extra

    def evaluate(self, tag: str, answers: Path, split: str, block: dict | None = None) -> tuple[dict, Path]:
        """The stats of `answers` judged by the experiment's judge (or `block`), and the judged file."""
        from safeeraser.eval import evaluate, make_judge, stats_path_for

        from safeeraser.provenance import file_sha256

        name, kwargs, extra = self.judge(block)
        # Named from the answers' content too: answers made again (e.g. once a broken image is fixed)
        # are judged again, never matched with the stats of the earlier ones.
        key = _digest({"judge": extra, "answers": file_sha256(answers)})
        out = self.work / "eval" / f"{answers.stem}_{name}_{key}_rr.json"
        stats = stats_path_for(out)
        if not stats.exists():
            self.log(f"[{tag}] judging {split} with the {name} judge")
            judge = make_judge(name, cache_path=self.work / "eval" / f"judge_cache_{name}.jsonl", **kwargs)
            evaluate(answers, self.cfg.data[split], out, judge=judge, show_progress=False)
            self.executed.append(f"eval:{tag}:{split}" + ("" if block is None else f":{name}"))
            return json.loads(stats.read_text()), out
        result = json.loads(stats.read_text())
        self.note_reuse(str(stats), result.get("provenance"))
        return result, out

    def agreement(self, tag: str, answers: dict[str, Path], judged: dict[str, Path]) -> dict:
        """Per agreement judge: its labels against the experiment judge's on both splits (no new calls
        for what is judged already)."""
        from safeeraser.eval.agreement import compare

        result = {}
        for block in agreement_blocks(self.cfg):
            other = {split: self.evaluate(tag, answers[split], split, block)[1] for split in answers}
            # without the two files' paths: those name steps by the vanilla folder's identity, which
            # differs between machines, and report rows must not
            result[block["name"]] = {split: {k: v for k, v in compare(judged[split], other[split]).items()
                                             if k not in ("a", "b")} for split in answers}
        return result

    def specificity(self, tag: str, ckpt: Path | None) -> dict | None:
        spec = self.cfg.specificity
        if spec is None:
            return None
        from safeeraser.specificity import builtin_data_root
        from safeeraser.specificity.engine_predict import load_engine_predict_fn
        from safeeraser.specificity.runner import run_specificity

        # Named from its settings too: another benchmark list, limit or data root is another result.
        out = self.work / "specificity" / f"{tag}_{_digest(OmegaConf.to_container(spec))}"
        result = out / "specificity.json"
        if result.exists():
            return json.loads(result.read_text())
        root = builtin_data_root() if spec.data_root == "builtin" else Path(spec.data_root)
        loaded = {}

        def predict(requests):  # the model loads only if some question still needs an answer
            if "fn" not in loaded:
                from safeeraser.infer.ckpt_infer import build_parser

                batch_size = self.cfg.infer.get("batch_size", build_parser().get_default("batch_size"))
                loaded["fn"] = load_engine_predict_fn(self.cfg.model.vanilla, str(ckpt) if ckpt else None,
                                                      batch_size=int(batch_size))
            return loaded["fn"](requests)

        self.log(f"[{tag}] specificity")
        benchmarks = "gqa,vizwiz,sqa,vqav2,pope,mmvet,mmbench" if spec.benchmarks == "all" else spec.benchmarks
        grader = mmvet_grader(self.cfg, self.work / "specificity" / "mmvet_grades.jsonl")
        summary = run_specificity(predict, benchmarks, root, out, limit=spec.get("limit"), grader=grader,
                                  progress=False)
        self.executed.append(f"specificity:{tag}")
        return summary

    def run_once(self, method: str, seed: int | None = None) -> dict:
        if method == VANILLA:
            tag, ckpt = f"{VANILLA}-{_digest(self.vanilla_identity())}", None
        else:
            tag, ckpt = self.forget(method, seed)
        from safeeraser.eval.bootstrap import judged_values
        from safeeraser.eval.degenerate import degenerate_by_view
        from safeeraser.io import read_json_records

        answers = {split: self.infer(tag, ckpt, split) for split in ("train", "val")}
        evaluated = {split: self.evaluate(tag, answers[split], split) for split in answers}
        stats = {split: s for split, (s, _) in evaluated.items()}
        judged = {split: path for split, (_, path) in evaluated.items()}
        values = {split: judged_values(read_json_records(path), str(path)) for split, path in judged.items()}
        self.values.setdefault(method, []).append(values)
        row = row_from(method, stats, self.specificity(tag, ckpt))
        row["ci"] = intervals(values, self.cfg.bootstrap)
        row["degenerate"] = {split: degenerate_by_view(read_json_records(path), str(path))
                             for split, path in answers.items()}
        row["degen"] = _percent(row["degenerate"]["val"]["harmful"]["rate"])
        if self.cfg.agreement:
            row["agreement"] = self.agreement(tag, answers, judged)
        return row

    def run_method(self, method: str) -> dict:
        """The method's row: one run, or the mean ± sd over the experiment's seeds (the vanilla model
        is not unlearned, so it has one run whatever the seeds)."""
        seeds = list(self.cfg.seeds) if method != VANILLA else []
        if len(seeds) < 2:
            return self.run_once(method, seeds[0] if seeds else None)
        row = combine_seeds(method, seeds, [self.run_once(method, s) for s in seeds])
        row["ci"] = intervals(self.values[method], self.cfg.bootstrap)
        return row

    def run(self) -> list[dict]:
        self.prepare_inputs()
        return [self.run_method(m) for m in [VANILLA, *self.cfg.methods]]

    def pd_effects(self) -> list[dict]:
        """For every method run with and without PD: the +PD minus base difference of each rate on the
        same records, with a paired bootstrap interval (over several seeds: seeds and records resampled,
        a seed's two runs kept together)."""
        from safeeraser.eval.bootstrap import paired_seeds_diff

        effects = []
        for base in self.cfg.methods:
            if f"{base}pd" not in self.values or base not in self.values:
                continue
            effect = {"method": base, "with_pd": f"{base}pd"}
            for col in RATES:
                a = [run[col.split][col.metric] for run in self.values[base]]
                b = [run[col.split][col.metric] for run in self.values[f"{base}pd"]]
                diff = paired_seeds_diff(a, b, n_resamples=self.cfg.bootstrap.resamples,
                                         seed=self.cfg.bootstrap.seed)
                effect[col.key] = {**diff.as_dict(), "excludes_zero": diff.excludes_zero}
            effects.append(effect)
        return effects


def _percent(x):
    return None if x is None else 100.0 * x


def intervals(runs, bootstrap) -> dict:
    """95% bootstrap intervals (percent) of each rate column, resampling records (a record's three
    samples are not independent); over several runs (seeds) a hierarchical bootstrap."""
    from safeeraser.eval.bootstrap import bootstrap_ci, combine_seeds

    runs = runs if isinstance(runs, list) else [runs]
    out = {}
    for col in RATES:
        per_run = [run[col.split][col.metric] for run in runs]
        opts = {"n_resamples": bootstrap.resamples, "seed": bootstrap.seed}
        ci = bootstrap_ci(per_run[0], **opts) if len(per_run) == 1 else combine_seeds(per_run, **opts)
        out[col.key] = None if ci.low is None else [_percent(ci.low), _percent(ci.high)]
    return out


def row_from(method: str, stats: dict, spec: dict | None) -> dict:
    row = {"method": method}
    for col in COLUMNS:
        if col.split:
            row[col.key] = stats[col.split]["summary"][col.metric]
        elif col.key == "specificity":
            row[col.key] = None if spec is None else spec.get("average")
    return row  # degen is set by the runner, from the answers


def combine_seeds(method: str, seeds: list[int], runs: list[dict]) -> dict:
    """Mean and sample standard deviation of each column over the runs; a column missing (None) in
    any run stays None."""
    import statistics

    row: dict = {"method": method, "seeds": seeds}
    sd: dict = {}
    for key in (c.key for c in COLUMNS):
        values = [r[key] for r in runs]
        missing = any(v is None for v in values)
        row[key] = None if missing else statistics.fmean(values)
        sd[key] = None if missing else statistics.stdev(values)
    row["sd"] = sd
    row["runs"] = runs
    return row


def run_experiment(path: str | Path, overrides: list[str] = (), log=print) -> tuple[list[dict], Runner]:
    from safeeraser.pipeline.report import write_report

    from safeeraser.provenance import digest, environment

    cfg = load_experiment(path, overrides)
    judge_options(cfg, path)  # a judge that cannot run (no API key) must fail now, not after hours of training
    for i, block in enumerate(agreement_blocks(cfg)):
        judge_options(cfg, path, block=block, key=f"agreement[{i}]")
    if cfg.threads is not None:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    runner = Runner(cfg, log=log)
    rows = runner.run()
    config = OmegaConf.to_container(cfg)
    name, _, _ = runner.judge()
    from safeeraser.eval.judges import judge_class

    judge = {"name": name, "prompt_version": getattr(judge_class(name), "prompt_version", None)}
    # A run over seeds is another table: it never replaces the single-run report.
    stem = "report" if len(cfg.seeds) < 2 else "report-seeds-" + "-".join(str(s) for s in cfg.seeds)
    files = write_report(rows, runner.work, title=f"SafeEraser: {cfg.name}", stem=stem, pd=runner.pd_effects(),
                         meta={"config": config, "config_sha256": digest(config), "judge": judge,
                               "provenance": environment(), "seconds": time.perf_counter() - t0,
                               "executed": runner.executed, "reused_from_other_code": runner.reused_notes})
    log(f"report: {', '.join(str(f) for f in files)}")
    return rows, runner
