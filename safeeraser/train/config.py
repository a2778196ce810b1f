"""Training configuration: YAML under config/, `key=value` overrides, validated before any model loads.

Every key of the reference's `config/forget_lora.yaml` is accepted with the same meaning; the
extra keys are ours (marked below).
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from safeeraser.benchmarks import REGISTRY as BENCHMARKS, benchmark_for
from safeeraser.benchmarks.base import BenchmarkItems
from safeeraser.data.records import load_benchmark
from safeeraser.io import ConfigError  # noqa: F401 - raised here, and imported from here by many callers
from safeeraser.models.families import REGISTRY, family_for
from safeeraser.numerics import MODES
from safeeraser.reference.checkout import CheckoutError, model_config, training_tags
from safeeraser.train.methods import METHOD_NAMES, REGISTRY as METHOD_REGISTRY, SUMMARIES, NoPDVariant, method_of

log = logging.getLogger(__name__)


def _config_dir() -> Path:
    """The shipped configs. A wheel installs the checkout's config/ folder as the package `safeeraser.config`
    (setup.py's package_dir); an editable install or the checkout on PYTHONPATH finds no such package
    (setuptools' editable finder does not resolve a namespace package remapped under a regular one) and
    reads the folder beside the package, the same files."""
    import importlib.util

    spec = importlib.util.find_spec("safeeraser.config")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "forget_lora.yaml").is_file():
            return Path(location)
    return Path(__file__).resolve().parents[2] / "config"


CONFIG_DIR = _config_dir()
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
MIXED_PRECISION = ("no", "fp16", "bf16")
REPORT_TO = ("none", "tensorboard", "wandb")


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


LORA_LAYERS = ("fast", "peft")  # LoRA.layers: see train/model_setup.py
# The reference-mode keys' values; the first is ours (the default), the last the reference's.
REFERENCE_CHOICES = {"prompt_format": ("chat_template", "reference"), "text_casing": ("keep", "capitalize"),
                     "retain_pairing": ("record", "reference"), "pd_pairing": ("own", "reference"),
                     "po_pooling": ("sum", "pooled"), "kl_positions": ("answer", "all", "reference"),
                     "token_mean": ("per_example", "batch"), "warmup_rounding": ("ceil", "round"),
                     "data_order": ("shuffle", "sequential")}


# The reference's model_family names, as the model_type of the checkpoints they name.
# Keys a resumed run may change: how long it trains, how often it saves, where it reports; not what it trains.
RESUME_FREE_KEYS = ("max_train_steps", "num_epochs", "save_steps", "save_dir", "resume_from_checkpoint", "overwrite",
                    "report_to", "workers", "logging_steps", "preset", "model_family", "eval_steps", "eval_samples",
                    "eval_data_path", "eval_asr_tokens")


@dataclass
class LoRAConfig:
    r: int = 32  # 0 means full fine-tuning
    alpha: int = 256
    dropout: float = 0.05
    # Projection names, scoped by the model's family to its language model (the vision towers have
    # q_proj/v_proj too); a string is taken as a full PEFT regex instead.
    target_modules: Any = field(default_factory=lambda: list(PROJECTIONS))
    # ours: the language model's decoder layers (indices from 0) the listed projections are taken from;
    # None: every layer (WMDP's RMU trains down_proj of layers 5, 6, 7 only)
    target_layers: Any = None
    # ours: "fast" (one addmm per adapter, sparse CPU dropout masks: train/model_setup.py) or "peft"
    layers: str = "fast"


# TrainConfig is nested by concern; every key keeps its flat name (the reference's, in its YAML and on its
# command line: lr=1e-4), read into its section (optim.lr) by `nest`. A key's name is its name in its section.
@dataclass
class ModelSection:
    # The family is read from the checkpoint's config.model_type; a family name here (as the presets set,
    # e.g. qwen2_5_vl) is checked against it. "" = whatever the checkpoint is; the reference's value (a
    # family's reference_names, e.g. LLaVA's) is accepted for its configs (see check_model_family).
    model_family: str = ""
    model_path: str = "llava-hf/llava-1.5-7b-hf"
    # ours: a model preset under config/models/ (model_path, LoRA targets, tuned parts, dtype, max_length);
    # it overrides the config file and is overridden by key=value overrides
    preset: str = ""
    model_dtype: str = "auto"  # ours: auto = bf16 on a CUDA device that has it, else fp32
    tune_vision_tower: bool = False
    tune_mm_projector: bool = True
    tune_language_model: bool = False
    gradient_checkpointing: bool = False


@dataclass
class DataSection:
    split: str = "all_train"
    data_path: Any = "dataset/${data.split}.json"  # a file or a list of files
    idk_path: str = "dataset/prompt.json"  # ours: refusal targets for po/idk
    max_length: int = 0  # ours: truncate examples to this many tokens when positive
    workers: int = 0
    # How far this run follows the SafeEraser code (its forget.py / data_module.py) where we differ on
    # purpose; config/forget_reference.yaml sets every one to `reference` (docs/reference-mode.md).
    # prompt_format: "chat_template" (the processor's own) or "reference" (the reference's system tag +
    # "USER: <image>\n{q} ASSISTANT: {a}", its label rule, 512 text tokens), the tags read at run time from
    # reference_dir's config/model_config.yaml under the key model_family names
    prompt_format: str = "chat_template"
    reference_dir: str = ""  # a checkout of the reference repository (prompt_format=reference reads it)
    train_end_token: bool = True  # the end-of-answer token is trained (the reference trains none)
    text_casing: str = "keep"  # keep | capitalize (str.capitalize on questions, answers and refusals)
    retain_pairing: str = "record"  # record: the forget pair's own record | reference: any record's
    pd_pairing: str = "own"  # own: the forget pair's SD example | reference: the one at the retain index
    data_order: str = "shuffle"  # shuffle (per epoch, seeded) | sequential
    # ours: the benchmark data_path holds (safeeraser/benchmarks). Another than safeeraser: data_path is its
    # folder as released and split the split to forget (forget_10, forget5, ...); its retain split follows
    benchmark: str = "safeeraser"
    # What the vanilla fine-tune (forget_loss=sft) teaches: all (everything the benchmark teaches) or retain
    # (that without the forget split's examples: the retain-only "oracle" model forget quality compares with)
    teach: str = "all"


@dataclass
class OptimSection:
    lr: float = 1e-4
    batch_size: int = 4  # per process; the reference uses 1 with 16 accumulation steps
    gradient_accumulation_steps: int = 4
    num_epochs: int = 10
    max_train_steps: int = 0  # caps optimizer steps when positive (the reference's -1, no cap, is read as 0)
    max_grad_norm: float = 1.0
    weight_decay: float = 0.01
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.06
    warmup_rounding: str = "ceil"  # ceil | round (Python's, half to even)
    # The schedule advanced once per optimizer step (ours) or once per process per step (the reference's
    # accelerate-prepared scheduler: with 2 processes its warm-up and cosine run twice as fast)
    lr_schedule_per_process: bool = False
    mixed_precision: str = ""  # ours: "" keeps accelerate's setting (launch config)
    seed: int = 233
    fused_forward: bool = True  # ours: one forward over all views of a step
    answer_logits_only: bool = True  # ours: output-layer logits only from the first answer position on
    # ours: the CPU code path of torch's kernels (safeeraser.numerics): native, or avx2 for the same bits on
    # any x86-64 CPU with AVX2. Set before torch loads: by the command, or by `safeeraser run`'s `numerics`.
    numerics: str = "native"


@dataclass
class MethodSection:
    forget_loss: str = "ga"
    loss_weights: dict = field(default_factory=dict)  # ours: per-term weight overrides, e.g. {pd: 0.3}
    method_args: dict = field(default_factory=dict)  # ours: the method's own arguments, e.g. {beta: 0.2} for dpo
    # deprecated (ours): method_args.beta of npo, method_args.beta and .gamma of simnpo; still read
    npo_beta: Optional[float] = None
    simnpo_beta: Optional[float] = None
    simnpo_gamma: Optional[float] = None
    # ours: where a KL term's frozen reference comes from: "adapter" = the model with its LoRA adapter
    # disabled (no second copy); "copy" = a second loaded model, as the reference toolkit does
    kl_reference: str = "adapter"
    kl_all_positions: bool = False  # ours: kept for old configs; true is kl_positions=all
    po_pooling: str = "sum"  # sum: refusal mean + retain mean | pooled: one token mean over both
    # answer: answer tokens | all: every position of the view | reference: every position of the
    # micro-batch's common width, padding (zero embedding, position 1) and the last position included
    kl_positions: str = "answer"
    token_mean: str = "per_example"  # per_example | batch (one token mean over a view's rows)


@dataclass
class EvalSection:
    # ours: every eval_steps optimizer steps (0: never), the mean answer NLL of a fixed sample of
    # eval_samples forget / retain / PD examples, logged beside the losses and plotted; drawn from
    # eval_data_path (e.g. the val split: held out) or, when empty, from the training data
    eval_steps: int = 0
    eval_samples: int = 8
    eval_data_path: str = ""
    # ours: with eval_steps, also answer the sample's forget and PD prompts greedily (up to this many new
    # tokens; 0: not) and label the answers with the offline keyword judge: eval/asr and eval/sarr
    eval_asr_tokens: int = 0


@dataclass
class TrackingSection:
    save_dir: str = "ckpt_results/llava-7b/${method.forget_loss}_${optim.lr}_${data.split}_${optim.num_epochs}"
    save_steps: int = 0
    logging_steps: int = 1  # accepted for the reference's configs; log.jsonl has every step
    report_to: str = "none"
    # ours: keep the checkpoint with the best value of a logged metric (a key of log.jsonl: eval/forget_nll,
    # eval/sarr with eval_steps, loss/total, ...) in save_dir/best, `save_best_mode` min or max; with
    # final_adapter=best the saved adapter is that checkpoint's, not the last step's
    save_best: str = ""
    save_best_mode: str = "min"
    final_adapter: str = "last"
    resume_from_checkpoint: str = ""  # a checkpoint-N folder, or "latest" for the newest under save_dir
    overwrite: bool = False  # ours: allow writing into a save_dir that already holds a finished run


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    LoRA: LoRAConfig = field(default_factory=LoRAConfig)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    method: MethodSection = field(default_factory=MethodSection)
    eval: EvalSection = field(default_factory=EvalSection)
    tracking: TrackingSection = field(default_factory=TrackingSection)


SECTIONS = {name: f.default_factory for name, f in TrainConfig.__dataclass_fields__.items() if name != "LoRA"}
# flat key (as the reference and the command line write it) -> its section
FLAT = {key: section for section, cls in SECTIONS.items() for key in cls.__dataclass_fields__}
assert len(FLAT) == sum(len(cls.__dataclass_fields__) for cls in SECTIONS.values()), "a key in two sections"


@functools.cache
def _schema() -> DictConfig:
    """The schema's defaults as a config: built once (~8 ms, a third of a load), never changed (a merge copies
    its first config)."""
    return OmegaConf.structured(TrainConfig)


def nest(layer, where: str = ""):
    """A config layer (a YAML file, overrides, settings) with its flat keys moved into their sections and
    its interpolations of flat keys (${forget_loss}) pointed at them (${method.forget_loss}). Keys given
    in their section already (optim.lr) stay; an unknown key is one error listing the keys."""
    raw = OmegaConf.to_container(layer, resolve=False) if isinstance(layer, DictConfig) else dict(layer or {})
    out: dict = {}
    for key, value in raw.items():
        if key in FLAT:
            out.setdefault(FLAT[key], {})[key] = _point(value)
        elif key in SECTIONS and isinstance(value, dict):
            for sub, v in value.items():
                if sub not in SECTIONS[key].__dataclass_fields__:
                    home = f" ({sub} is a key of '{FLAT[sub]}')" if sub in FLAT else ""
                    raise ConfigError(f"{where + ': ' if where else ''}unknown key '{key}.{sub}'{home}. "
                                      f"Valid keys: {valid_keys()}")
                out.setdefault(key, {})[sub] = _point(v)
        elif key == "LoRA" and isinstance(value, dict):
            out.setdefault(key, {}).update({sub: _point(v) for sub, v in value.items()})
        else:
            raise ConfigError(f"{where + ': ' if where else ''}unknown key '{key}'. Valid keys: {valid_keys()}")
    return OmegaConf.create(out)


def _point(value):
    """`value` with ${KEY} of a flat key written ${SECTION.KEY}."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: "${%s.%s}" % (FLAT[m.group(1)], m.group(1))
                      if m.group(1) in FLAT else m.group(0), value)
    if isinstance(value, list):
        return [_point(v) for v in value]
    if isinstance(value, dict):
        return {k: _point(v) for k, v in value.items()}
    return value


def valid_keys() -> str:
    return ", ".join([*FLAT, *(f"LoRA.{k}" for k in LoRAConfig.__dataclass_fields__)])


def config_from(values: dict | None = None, **flat):
    """A TrainConfig with `values` and `flat` (keys flat or in their sections) over the schema's defaults,
    resolved but not validated: a config object for code that builds one without a file or a command
    line (load_config is the checked way in)."""
    cfg = OmegaConf.merge(_schema(), nest(OmegaConf.create({**(values or {}), **flat})))
    OmegaConf.resolve(cfg)
    return cfg


def flat_config(config: dict) -> dict:
    """A config as a dict with its sections' keys at the top (LoRA kept nested): the flat form runs were
    named and saved with, whichever form `config` is in (a checkpoint saved before the sections is flat)."""
    out = {}
    for key, value in config.items():
        if key in SECTIONS and isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def config_help() -> str:
    """The keys and their defaults, and the methods, for `forget.py --help`."""
    import textwrap

    schema = OmegaConf.to_container(_schema())

    def show(v) -> str:
        return "[" + ",".join(v) + "]" if isinstance(v, list) else str(v) if v != "" else "''"

    lines = []
    for section, values in schema.items():  # a section's keys are written flat (lr=...), LoRA's as LoRA.r=...
        keys = [f"{'LoRA.' if section == 'LoRA' else ''}{k}={show(v)}" for k, v in values.items()]
        lines.append(textwrap.fill("  ".join(keys), width=110, initial_indent=f"  {section + ':':<10}",
                                   subsequent_indent=" " * 12, break_long_words=False, break_on_hyphens=False))
    methods = [f"  {name:<8} {summary}" for name, summary in sorted(SUMMARIES.items())]
    return "\n".join([
        "methods (forget_loss=NAME; NAMEpd adds the PD term, e.g. gdpd; idk = po):", *methods, "",
        "config keys by section, as key=value overrides (schema defaults; the config file sets many of them):",
        *lines])


def _parse_overrides(overrides: list[str]) -> DictConfig:
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"override '{bad[0]}' is not of the form key=value")
    try:
        return OmegaConf.from_dotlist([o.lstrip("+") for o in overrides])
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse overrides: {exc}") from None


def _friendly(exc: OmegaConfBaseException) -> str:
    key = str(getattr(exc, "full_key", None) or getattr(exc, "key", None))
    section, _, leaf = key.partition(".")
    if section in SECTIONS and leaf:
        key = leaf  # as the user writes it: lr, not optim.lr
    msg = str(exc).splitlines()[0]
    if "Key '" in msg and "not in" in msg:
        return f"unknown key '{key}'. Valid keys: {valid_keys()}"
    return f"key '{key}': {msg}"


def load_config(config: str | os.PathLike | None, overrides: list[str] = (), validate_paths: bool = True,
                settings: dict | None = None):
    """Merge schema defaults, a YAML file, `key=value` overrides (a user's, as written) and `settings` (typed
    values a caller sets: {"seed": 1, "data_path": [a, b]}, nested keys as nested dicts); validate; return
    a resolved DictConfig."""
    layers = [_schema()]
    if config:
        path = find_config(config)
        try:
            own = OmegaConf.load(path)
        except Exception as exc:
            raise ConfigError(f"{path}: cannot parse YAML: {exc}") from None
        layers.append(nest(read_reference_keys(own, str(path)), str(path)))
    cli = nest(read_reference_keys(_parse_overrides(list(overrides)), "overrides"))
    if settings:
        cli = OmegaConf.merge(cli, nest(OmegaConf.create(dict(settings))))
    try:
        preset = _given_preset(layers, cli)
        if preset:
            layers.append(nest(_load_preset(preset), f"preset '{preset}'"))
        cfg = OmegaConf.merge(*layers, cli)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(_friendly(exc)) from None
    fold_deprecated_keys(cfg)
    validate(cfg, validate_paths=validate_paths)
    return cfg


def _given_preset(layers: list, cli: DictConfig):
    """model.preset as the merged config would hold it: the last layer's that sets it, when that is a plain
    string. Read from the layers, not from a merge of them all, which costs as much as the config's own merge;
    anything else (an interpolation, a number, a path, a list) is left to that merge, which converts it to the
    schema's string or names the key in its error. (The schema, the first layer, always holds the key.)"""
    for layer in (cli, *reversed(layers)):
        model = layer.get("model")
        if isinstance(model, DictConfig) and "preset" in model:
            if not OmegaConf.is_interpolation(model, "preset") and isinstance(model.preset, str):
                return model.preset
            return OmegaConf.merge(*layers, cli).model.preset


# Keys of the reference's forget_lora.yaml with no setting of their own here, read as the reference reads
# them: key -> (the value a run here gives, our key it sets or None, what to use instead of another value)
REFERENCE_ONLY_KEYS = {
    "overwrite_dir": (None, "overwrite", ""),
    "save_model": (True, None, "the trained adapter is always saved"),
    "eval_while_train": (False, None, "evaluation during training is eval_steps (with eval_data_path)"),
    "eval_only": (False, None, "a checkpoint is evaluated by ckpt_infer.py and eval_all.py"),
}


def read_reference_keys(layer: DictConfig, where: str) -> DictConfig:
    """A config layer (a YAML file, the overrides) with the reference's own keys read: `overwrite_dir` is
    `overwrite`; `save_model`, `eval_while_train` and `eval_only` are accepted at the one value a run here
    has (another is an error saying what to use); `max_train_steps: -1` (the reference's "no cap") is 0."""
    if not isinstance(layer, DictConfig):
        return layer
    layer = layer.copy()
    for key, (only, ours, instead) in REFERENCE_ONLY_KEYS.items():
        if key not in layer:
            continue
        value = layer.pop(key)
        if ours is not None:
            layer[ours] = value
        elif value != only:
            raise ConfigError(f"{where}: key '{key}': only {str(only).lower()} is supported ({instead}), got {value}")
    if layer.get("max_train_steps") == -1:
        layer["max_train_steps"] = 0
    return layer


# Top-level keys that became method arguments: key -> (method, argument, its value before it was one). The
# default is what a run's identity holds for the key, so that runs named before the move keep their names.
DEPRECATED_METHOD_KEYS = {"npo_beta": ("npo", "beta", 0.1), "simnpo_beta": ("simnpo", "beta", 2.5),
                          "simnpo_gamma": ("simnpo", "gamma", 0.0)}


def _base_method(forget_loss: str) -> str:
    return forget_loss[:-2] if forget_loss.endswith("pd") else forget_loss


def fold_deprecated_keys(cfg) -> None:
    """A deprecated key given (npo_beta=1.0) becomes its method's argument (method_args.beta), with one
    line saying so; checked against the argument's range under the key as written. For another method it
    has no effect, as before."""
    base = _base_method(str(cfg.method.forget_loss))
    for key, (method, arg, _) in DEPRECATED_METHOD_KEYS.items():
        value = cfg.method.get(key)
        if value is None:
            continue
        log.warning("key '%s' is deprecated: it is method_args.%s of %s (%s=%s)", key, arg, method, key, value)
        problem = METHOD_REGISTRY[method].arg_problem(arg, value)
        if problem:
            raise ConfigError(f"key '{key}': {problem}")
        if base == method:
            given = cfg.method.method_args.get(arg)
            if given is not None and given != value:
                raise ConfigError(f"key '{key}': {value}, but method_args.{arg} is {given}: give one of them")
            cfg.method.method_args[arg] = value
        cfg.method[key] = None


@dataclass(frozen=True)
class TrainRequest:
    """A training config to load: its file, the user's key=value overrides as written (a config's
    forget_overrides, a command line) and the typed settings the caller sets on top (paths, the method,
    the seed), so that a caller never writes its own settings as strings for the parser to read back."""

    config: str | None
    overrides: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)

    def load(self, validate_paths: bool = True, **more):
        return load_config(self.config, list(self.overrides), validate_paths, settings={**self.settings, **more})


def find_config(config: str | os.PathLike) -> Path:
    """A config file given as a path, or Hydra-style as a name under config/, with or without `.yaml`."""
    given = Path(config)
    names = [given] if given.suffix in (".yaml", ".yml") else [given, given.with_name(given.name + ".yaml")]
    for name in names:
        for path in (name, CONFIG_DIR / name):
            if path.is_file():
                return path
    raise ConfigError(f"config file '{config}' not found (looked in . and {CONFIG_DIR}, with and without .yaml)")


def presets() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "models").glob("*.yaml"))


def _load_preset(name: str):
    path = Path(name) if name.endswith(".yaml") else CONFIG_DIR / "models" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"key 'preset': unknown preset '{name}'. Valid choices: {', '.join(presets())}")
    try:
        return OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: cannot parse YAML: {exc}") from None


def data_paths(cfg) -> list[str]:
    value = cfg.data.data_path
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_records_first(cfg) -> list | BenchmarkItems:
    """Every data file's records, validated (images included) before any model loads (and before torch
    is imported): bad data must fail in a second, not after loading 7B. Another benchmark than SafeEraser:
    its training items (its split read and checked)."""
    if cfg.data.benchmark != "safeeraser":
        bench = benchmark_for(cfg.data.benchmark)
        return BenchmarkItems(bench.name, *bench.training_items(Path(cfg.data.data_path), cfg.data.split),
                              root=str(cfg.data.data_path))
    return [rec for path in data_paths(cfg) for rec in load_benchmark(path)]


TEACH = ("all", "retain")  # data.teach
RESTRICTIONS = {"mask": "a mask on their updates", "prune": "zeroed neurons",
                "units": "only chosen MLP units train"}  # Method.restriction, in words


def validate(cfg, validate_paths: bool = True) -> None:
    def need(cond: bool, key: str, msg: str):
        if not cond:
            raise ConfigError(f"key '{key}': {msg}")

    for key, choices in REFERENCE_CHOICES.items():
        value = cfg[FLAT[key]][key]
        need(value in choices, key, f"unknown '{value}'. Valid choices: {', '.join(choices)}")
    try:
        method = method_of(cfg, weights=False)
    except NoPDVariant as exc:
        raise ConfigError(f"key 'forget_loss': {exc}") from None
    except KeyError:
        raise ConfigError(f"key 'forget_loss': unknown loss '{cfg.method.forget_loss}'. "
                          f"Valid choices: {', '.join(METHOD_NAMES)}") from None
    need(cfg.optim.lr > 0, "lr", f"must be positive, got {cfg.optim.lr}")
    need(cfg.optim.batch_size >= 1, "batch_size", f"must be >= 1, got {cfg.optim.batch_size}")
    need(cfg.optim.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1")
    need(cfg.optim.num_epochs >= 1, "num_epochs", f"must be >= 1, got {cfg.optim.num_epochs}")
    need(cfg.optim.max_train_steps >= 0, "max_train_steps", "must be >= 0")
    need(cfg.optim.numerics in MODES, "numerics", f"one of {', '.join(MODES)}")
    need(cfg.LoRA.r >= 0, "LoRA.r", "must be >= 0 (0 means full fine-tuning)")
    # LoRA scales its update by alpha / r: alpha 0 trains an adapter that changes nothing
    need(cfg.LoRA.r == 0 or cfg.LoRA.alpha > 0, "LoRA.alpha", f"must be > 0, got {cfg.LoRA.alpha}")
    need(0 <= cfg.LoRA.dropout < 1, "LoRA.dropout", "must be in [0, 1)")
    need(cfg.LoRA.layers in LORA_LAYERS, "LoRA.layers", f"must be one of {', '.join(LORA_LAYERS)}, got {cfg.LoRA.layers!r}")
    targets = cfg.LoRA.target_modules
    need((isinstance(targets, str) and targets.strip() != "")
         or (not isinstance(targets, str) and len(targets) > 0 and all(isinstance(t, str) and t for t in targets)),
         "LoRA.target_modules", "a non-empty list of module names (q_proj, ...) or a regex string")
    if isinstance(targets, str):
        try:
            re.compile(targets)
        except re.error as exc:
            raise ConfigError(f"key 'LoRA.target_modules': '{targets}' is not a valid regex: {exc}") from None
    layers = cfg.LoRA.target_layers
    if layers is not None:
        need(not isinstance(layers, (str, int, float)) and hasattr(layers, "__len__") and len(layers) > 0
             and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers),
             "LoRA.target_layers", f"a non-empty list of layer indices (0, 1, ...), or null for every layer; got {layers!r}")
        need(not isinstance(targets, str), "LoRA.target_layers",
             "applies to a list of projection names; a LoRA.target_modules regex names its layers itself")
    need(cfg.optim.max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0 disables clipping)")
    need(cfg.optim.weight_decay >= 0, "weight_decay", "must be >= 0")
    need(0 <= cfg.optim.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
    need(cfg.optim.lr_scheduler_type in SCHEDULERS, "lr_scheduler_type",
         f"unknown '{cfg.optim.lr_scheduler_type}'. Valid choices: {', '.join(SCHEDULERS)}")
    need(cfg.optim.mixed_precision in ("",) + MIXED_PRECISION, "mixed_precision",
         f"unknown '{cfg.optim.mixed_precision}'. Valid choices: {', '.join(MIXED_PRECISION)} (or empty)")
    need(cfg.tracking.report_to in REPORT_TO, "report_to",
         f"unknown '{cfg.tracking.report_to}'. Valid choices: {', '.join(REPORT_TO)}")
    need(cfg.tracking.save_steps >= 0, "save_steps", "must be >= 0")
    need(cfg.method.kl_reference in ("adapter", "copy"), "kl_reference",
         f"unknown '{cfg.method.kl_reference}'. Valid choices: adapter, copy")
    need(cfg.data.pd_pairing != "reference" or cfg.data.retain_pairing == "reference", "pd_pairing",
         "'reference' takes the SD example at the retain draw's index: set retain_pairing=reference too")
    if cfg.data.prompt_format == "reference":
        need(bool(cfg.data.reference_dir), "reference_dir",
             "prompt_format=reference reads the reference's prompt tags from a checkout of its repository: "
             "set reference_dir")
        if validate_paths:
            try:  # the model's family is known once it loads (build_dataset): here, the file and this config's key
                if cfg.model.model_family in model_config(cfg.data.reference_dir):
                    training_tags(cfg.data.reference_dir, [cfg.model.model_family])
            except CheckoutError as exc:
                raise ConfigError(f"key 'reference_dir': {exc}") from None
    need(cfg.tracking.save_best_mode in ("min", "max"), "save_best_mode", f"min or max, got {cfg.tracking.save_best_mode!r}")
    need(cfg.tracking.final_adapter in ("last", "best"), "final_adapter", f"last or best, got {cfg.tracking.final_adapter!r}")
    need(cfg.tracking.final_adapter == "last" or bool(cfg.tracking.save_best), "final_adapter",
         "best needs save_best (the metric that decides which checkpoint is best)")
    need(not cfg.tracking.save_best.startswith("eval/") or cfg.eval.eval_steps > 0, "save_best",
         f"{cfg.tracking.save_best} is logged only with in-training evaluation: set eval_steps")
    need(cfg.eval.eval_steps >= 0, "eval_steps", "must be >= 0 (0: no in-training evaluation)")
    need(cfg.eval.eval_samples >= 1, "eval_samples", "must be >= 1")
    need(cfg.eval.eval_asr_tokens >= 0, "eval_asr_tokens", "must be >= 0 (0: no quick ASR)")
    if validate_paths and cfg.eval.eval_data_path:
        need(Path(cfg.eval.eval_data_path).is_file(), "eval_data_path", f"file '{cfg.eval.eval_data_path}' not found")
    need(cfg.model.model_dtype in ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"), "model_dtype",
         "choose auto, float32, bfloat16 or float16")
    for name, value in cfg.method.method_args.items():
        need(name in method.args, f"method_args.{name}",
             f"'{cfg.method.forget_loss}' has no argument '{name}'. Its arguments: "
             f"{', '.join(sorted(method.args)) or 'none'}")
        problem = method.arg_problem(name, value)
        need(problem is None, f"method_args.{name}", problem or "")
    terms = set(method.term_names())
    for name, weight in cfg.method.loss_weights.items():
        need(name in terms, f"loss_weights.{name}",
             f"'{cfg.method.forget_loss}' has no term '{name}'. Its terms: {', '.join(sorted(terms))}")
        need(isinstance(weight, (int, float)), f"loss_weights.{name}", "must be a number")
    need(method.restriction != "anchor_mask" or cfg.LoRA.r > 0, "LoRA.r",
         f"'{cfg.method.forget_loss}' trains two LoRA adapters (forgetting and retain anchor) and merges them: "
         "set LoRA.r > 0")
    need(method.restriction in (None, "anchor_mask") or cfg.LoRA.r == 0, "LoRA.r",
         f"'{cfg.method.forget_loss}' restricts the model's own weights ({RESTRICTIONS.get(method.restriction)}), "
         "which a LoRA adapter does not hold: set LoRA.r=0 and the parts to tune (tune_language_model, "
         "tune_vision_tower)")
    need(method.restriction != "units" or cfg.model.tune_language_model or cfg.model.tune_vision_tower,
         "tune_language_model", f"'{cfg.method.forget_loss}' trains the units of the language model's and the "
         "vision tower's MLPs: set tune_language_model and/or tune_vision_tower")
    if cfg.LoRA.r == 0:
        need(cfg.model.tune_language_model or cfg.model.tune_mm_projector or cfg.model.tune_vision_tower, "LoRA.r",
             "is 0 (full fine-tuning) but no part is tuned: set tune_language_model, tune_mm_projector "
             "or tune_vision_tower")
    need(cfg.data.teach in TEACH, "teach", f"unknown '{cfg.data.teach}'. Valid choices: {', '.join(TEACH)}")
    need(cfg.data.teach == "all" or method.data_views() == ["target"], "teach",
         f"'{cfg.data.teach}' chooses what the vanilla fine-tune (forget_loss=sft) learns; "
         f"'{cfg.method.forget_loss}' unlearns")
    if cfg.data.benchmark != "safeeraser":
        _validate_benchmark(cfg, method, need, validate_paths)
    elif validate_paths:
        for p in data_paths(cfg):
            need(Path(p).is_file(), "data_path", f"file '{p}' not found")
    if validate_paths:
        if "idk" in method.views():
            _default_idk_path(cfg)
        if cfg.tracking.resume_from_checkpoint and cfg.tracking.resume_from_checkpoint != "latest":
            need(Path(cfg.tracking.resume_from_checkpoint).is_dir(), "resume_from_checkpoint",
                 f"folder '{cfg.tracking.resume_from_checkpoint}' not found")


def check_model_family(cfg, model_type: str) -> None:
    """model_family, when set to one of our family names (as the presets do), must be the checkpoint's: a
    config for one family run on another's checkpoint is a mistake in model_path or in the config.

    The reference's value (`llava-v1.5-vicuna`) is boilerplate of its LLaVA-only configs, which are reused
    unchanged for every family (forget_lora.yaml, forget_tiny.yaml): it says nothing about the model, so a
    mismatch there is only noted."""

    name = cfg.model.model_family
    if not name or name == model_type or name in family_for(model_type).reference_names:
        return
    hint = f"the family is read from the checkpoint: set model_family={model_type} or leave it empty"
    if any(name in family_for(other).reference_names for other in REGISTRY):
        log.warning("model_family '%s' (the reference's LLaVA-only key) is ignored: model_path '%s' is a '%s' "
                    "checkpoint (%s)", name, cfg.model.model_path, model_type, hint)
        return
    raise ConfigError(f"key 'model_family': '{name}', but model_path '{cfg.model.model_path}' is a '{model_type}' "
                      f"checkpoint ({hint})")


def _validate_benchmark(cfg, method, need, validate_paths: bool) -> None:
    """data.benchmark another than SafeEraser: a registered one with training items, a split it forgets,
    no view it lacks, its folder."""
    name = cfg.data.benchmark
    need(name in BENCHMARKS, "benchmark", f"unknown '{name}'. Valid choices: {', '.join(BENCHMARKS)}")
    bench = benchmark_for(name)
    need(bench.training_items is not None, "benchmark", f"'{name}' has no training items yet")
    problem = bench.forget_split_problem(cfg.data.split)
    need(problem is None, "split", problem)
    problem = bench.pd_problem(cfg.method.forget_loss, "pd" in method.data_views())
    need(problem is None, "forget_loss", problem)
    need(cfg.eval.eval_steps == 0, "eval_steps", f"in-training evaluation reads SafeEraser's format, not {name}'s")
    need(isinstance(cfg.data.data_path, str) and cfg.data.data_path != "", "data_path",
         f"{name}'s folder as released (one path)")
    if validate_paths and "idk" in method.data_views():  # no prompt file ships beside another benchmark's data
        need(Path(cfg.data.idk_path).is_file(), "idk_path", f"file '{cfg.data.idk_path}' not found (the refusals "
             f"'{cfg.method.forget_loss}' trains on; {name} has none of its own)")
    if validate_paths:
        need(isinstance(cfg.data.data_path, str) and Path(cfg.data.data_path).is_dir(), "data_path",
             f"'{cfg.data.data_path}' is not a folder: {name}'s data_path is its folder as released")


def _default_idk_path(cfg) -> None:
    """idk_path, or else the prompt.json next to the (first) data file: the benchmark ships them together."""
    if Path(cfg.data.idk_path).is_file():
        return
    beside = Path(data_paths(cfg)[0]).parent / "prompt.json"
    if not beside.is_file():
        raise ConfigError(f"key 'idk_path': file '{cfg.data.idk_path}' not found (nor {beside} beside data_path)")
    log.warning("idk_path '%s' not found: using %s, beside data_path", cfg.data.idk_path, beside)
    cfg.data.idk_path = str(beside)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def resume_differences(saved: dict, cfg) -> list[str]:
    """The keys, other than the budget ones, whose value differs from the checkpoint's run: `key: old -> new`."""
    return config_differences(saved, cfg, RESUME_FREE_KEYS)


# Keys added after runs were first named by their config (the pipeline's hash names, the vanilla model's
# stale check): at these values they change nothing a run makes, so they are left out of a run's identity
# and the runs made before the keys existed keep their names.
# A dotted key names a nested one. LoRA.layers=fast gives PEFT's values bit for bit unless LoRA.dropout > 0
# on a CPU (other random masks, the same distribution) or lora_alpha / r is not a power of two (one rounding
# fewer): runs made before it are kept under their names, as runs of the same settings.
LATER_KEY_DEFAULTS = {"kl_reference": "adapter", "eval_steps": 0, "eval_samples": 8, "eval_data_path": "",
                      "eval_asr_tokens": 0, "LoRA.layers": "fast", "LoRA.target_layers": None,
                      "numerics": "native",
                      "prompt_format": "chat_template", "reference_dir": "", "train_end_token": True,
                      "text_casing": "keep", "retain_pairing": "record", "pd_pairing": "own", "po_pooling": "sum",
                      "kl_positions": "answer", "token_mean": "per_example", "warmup_rounding": "ceil",
                      "data_order": "shuffle", "lr_schedule_per_process": False, "save_best": "",
                      "save_best_mode": "min", "final_adapter": "last", "benchmark": "safeeraser",
                      "teach": "all"}


def identity_config(config: dict) -> dict:
    """A resolved config (a dict, flat or in sections) as the flat dict runs are named by, without the later
    keys that hold their neutral values, and with the deprecated keys' values where runs named before
    their move held them (an npo run's method_args.beta as npo_beta): a run's name does not change with
    where a setting is written."""
    def strip(d: dict, prefix: str) -> dict:
        out = {}
        for k, v in d.items():
            name = prefix + str(k)
            if name in LATER_KEY_DEFAULTS and v == LATER_KEY_DEFAULTS[name]:
                continue
            out[k] = strip(v, name + ".") if isinstance(v, dict) else v
        return out
    config = flat_config(dict(config))  # the flat form runs were named by, whichever form is given
    if "forget_loss" in config:
        base = _base_method(str(config["forget_loss"]))
        args = dict(config.get("method_args") or {})
        for key, (method, arg, default) in DEPRECATED_METHOD_KEYS.items():
            moved = args.pop(arg, None) if base == method else None
            config[key] = moved if moved is not None else (config.get(key) if config.get(key) is not None else default)
        if "method_args" in config:
            config["method_args"] = args
    return strip(config, "")


def config_differences(saved: dict, cfg, ignore=()) -> list[str]:
    """`key: old -> new` for every key (top-level names in `ignore` aside) whose value differs between a
    run's saved config and `cfg`."""
    old = _flatten(identity_config(saved))
    new = _flatten(identity_config(OmegaConf.to_container(cfg, resolve=True)))
    missing = object()
    diffs = []
    for key in sorted(set(old) | set(new)):
        if key.split(".", 1)[0] in ignore:
            continue
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            show = lambda v: "(unset)" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{key}: {show(a)} -> {show(b)}")
    return diffs
