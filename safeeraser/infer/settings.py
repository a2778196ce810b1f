"""The settings of one inference run: a typed record that ckpt_infer's command line fills and the pipeline
builds directly (an experiment's `infer:` block). Each field is one ckpt_infer flag, with its type, default,
choices and help, so the flags, the experiment's keys and their checks cannot drift apart."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

FLUSH_SECONDS = 30.0  # about the most finished work a kill can lose (see ckpt_infer.chunk_end)


def _flag(default, kind=str, help=None, choices=None, required=False):
    return field(default=default, metadata={"kind": kind, "help": help, "choices": choices, "required": required})


@dataclass
class InferSettings:
    eval_file: str = _flag("", help="all_train.json or all_val.json", required=True)
    model_path: str = _flag("llava-hf/llava-1.5-7b-hf", help="hub id or folder of the base model")
    checkpoint_path: Any = _flag(
        None, help="adapter folder, full model folder or the reference's checkpoint.pt; omit for vanilla")
    output_file: str = _flag("", required=True)
    loss_type: Any = _flag(None, help="the unlearning method (recorded only)")
    batch_size: int = _flag(16, int)
    max_new_tokens: int = _flag(512, int)
    temperature: float = _flag(1.0, float)
    top_p: float = _flag(0.9, float)
    greedy: bool = _flag(False, bool, help="greedy decoding for every answer")
    seed: int = _flag(0, int)
    dtype: str = _flag("auto")
    prompt_format: str = _flag("chat_template", choices=("chat_template", "reference"),
                               help="the processor's chat template, or the reference's ckpt_infer prompt (its "
                                    "vicuna_v1 conversation, read from --reference_dir)")
    reference_dir: Any = _flag(None, help="a checkout of the SafeEraser repository (--prompt_format reference)")
    lora_alpha: int = _flag(256, int,
                            help="LoRA alpha of a reference checkpoint.pt, which does not record it (reference: 256)")
    resume: bool = _flag(False, bool, help="continue an interrupted run from its partial file")
    strict: bool = _flag(False, bool, help="stop at a record that cannot be processed")
    chunk_records: int = _flag(32, int, help="the most records generated (and saved) together; chunks are sized "
                                             f"to save about every {FLUSH_SECONDS:.0f} s")
    limit: int = _flag(0, int, help="only the first N records (0: all)")
    backend: str = _flag("hf", choices=("hf", "vllm"))
    engine: str = _flag("auto", choices=("auto", "fast", "generate"),
                        help="hf backend: our decoding loop (fast), transformers' generate, or the family's choice "
                             "(auto); both give the same answers")
    # Where this process's records come from and go to: never what an answer is (a record's answers are
    # seeded from its index), so none of them is in the meta's answer parts.
    shards: int = _flag(1, int, help="split the records (after --limit) into N contiguous blocks, each answered "
                                     "by its own run into <output stem>.shard-K-of-N.json")
    shard_index: int = _flag(0, int, help="with --shards N: the block this run answers, 0 to N-1")
    merge_shards: bool = _flag(False, bool, help="with --shards N: join the N shard files into --output_file, in "
                                                 "record order (same flags as the shard runs; loads no model)")

    def problems(self) -> list[tuple[str, str, Any]]:
        """(field, rule, value) of every value that cannot work, in flag order."""
        rules = (
            ("limit", self.limit >= 0, "0 (all records) or a positive count"),
            ("batch_size", self.batch_size >= 1, "a positive count"),
            ("chunk_records", self.chunk_records >= 1, "a positive count"),
            ("max_new_tokens", self.max_new_tokens >= 1, "a positive count"),
            ("temperature", self.temperature >= 0, "0 or more"),  # also false for nan
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("shards", self.shards >= 1, "a positive count"),
            ("shard_index", 0 <= self.shard_index < max(self.shards, 1),
             f"from 0 to {max(self.shards, 1) - 1} (one of --shards {self.shards})"),
            ("shards", self.shards >= 2 or not self.merge_shards, "2 or more with --merge_shards"),
            ("reference_dir", bool(self.reference_dir) or self.prompt_format != "reference",
             "a checkout of the SafeEraser repository with --prompt_format reference"),
        )
        return [(name, rule, getattr(self, name)) for name, ok, rule in rules if not ok]


# Set by the pipeline for each inference step (which file, which model, where to, which shard): never
# `infer:` keys. Sharding is the launcher's (`launcher.infer_shards`): it changes where answers are made only.
PIPELINE_FIELDS = ("eval_file", "model_path", "checkpoint_path", "output_file", "resume", "shards", "shard_index",
                   "merge_shards")
SHARD_FIELDS = ("shards", "shard_index", "merge_shards")
FIELDS = {f.name: f for f in fields(InferSettings)}


class SettingError(ValueError):
    """A setting that cannot be used: `key` names it, `message` says why."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def add_arguments(parser) -> None:
    """Every field as its ckpt_infer flag (`--name`), in field order."""
    for f in fields(InferSettings):
        m = f.metadata
        kwargs = {"help": m["help"]}
        if m["kind"] is bool:
            kwargs["action"] = "store_true"
        else:
            if m["kind"] is not str:
                kwargs["type"] = m["kind"]
            if m["choices"]:
                kwargs["choices"] = list(m["choices"])
            if m["required"]:
                kwargs["required"] = True
            else:
                kwargs["default"] = f.default
        parser.add_argument(f"--{f.name}", **kwargs)


def as_settings(obj) -> InferSettings:
    """InferSettings from itself or from a parsed command line (an argparse Namespace)."""
    return obj if isinstance(obj, InferSettings) else InferSettings(**vars(obj))


def _typed(name: str, value):
    """`value` as field `name` holds it; SettingError if it is of another type or not one of the choices."""
    m = FIELDS[name].metadata
    kind, optional = m["kind"], FIELDS[name].default is None
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise SettingError(name, f"{names[kind]}{' or null' if optional else ''}, got {value!r}")
    if m["choices"] and value not in m["choices"]:
        raise SettingError(name, f"one of {', '.join(m['choices'])}, got {value!r}")
    return value


def check_block(block: Mapping) -> dict:
    """An experiment's `infer:` block, typed and checked: unknown keys, the pipeline's own keys, wrong types
    and values that cannot work raise SettingError naming the key."""
    known = [name for name in FIELDS if name not in PIPELINE_FIELDS]
    typed = {}
    for key, value in block.items():
        if key in SHARD_FIELDS:
            raise SettingError(str(key), "set per step by the pipeline: shard inference with launcher.infer_shards")
        if key not in known:
            raise SettingError(str(key), f"not an inference setting; known: {', '.join(sorted(known))}")
        typed[key] = _typed(key, value)
    for name, rule, value in InferSettings(**typed).problems():
        raise SettingError(name, f"must be {rule}, got {value}")
    return typed


def settings_for(block: Mapping, **pipeline) -> InferSettings:
    """One pipeline inference step's settings: the experiment's `infer:` block and the step's own files."""
    return InferSettings(**check_block(block), **pipeline)
