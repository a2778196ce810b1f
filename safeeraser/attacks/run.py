"""`safeeraser attack`: a checkpoint's answers to a benchmark file under an attack, in ckpt_infer's output
format and under the original records' fields, so that `eval_all` scores them against the dataset as it
scores any answers (each record also says what was asked: its `attack` field).

    safeeraser attack --kind jailbreak --variant role_play --model_path BASE --checkpoint_path ADAPTER \\
        --eval_file dataset/all_val.json --output_file answers_jailbreak.json [ckpt_infer's options]

The attacked records, the images an attack writes and the raw answers go to OUTPUT.attack/ (an interrupted
run resumes there with --resume, as ckpt_infer does)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from safeeraser.attacks import REGISTRY, AttackError, attack_for
from safeeraser.attacks.base import absolute
from safeeraser.data.records import load_benchmark
from safeeraser.infer.ckpt_infer import build_parser as infer_parser, format_summary, meta_path, run_inference
from safeeraser.infer.settings import InferSettings
from safeeraser.io import ConfigError, DataError, atomic_write_json, read_json_records
from safeeraser.provenance import weights_identity

INDEX = "attack_index"  # kept on each attacked record, to put its answers back under the original
PAIR = "attack_pair"  # and, where an attack asks each pair on its own record, the pair it stands for


def work_dir(output_file: str | Path) -> Path:
    return Path(f"{output_file}.attack")


def attacked_records(kind: str, variant: str, eval_file: str | Path, work: Path) -> tuple[list[dict], list[dict]]:
    """(the benchmark's records, their attacked copies), the images' paths made absolute first."""

    attack = attack_for(kind)
    attack.check_variant(variant)
    eval_file = Path(eval_file)
    # one clear error for a bad record or a missing image, before any model loads; the records as read
    loaded = load_benchmark(eval_file)
    records = [record.raw for record in loaded]
    attacked = []
    for i, (record, read) in enumerate(zip(records, loaded)):
        parts = attack.apply_pairs(absolute(read), variant, i, work / "images" / variant)
        split = len(parts) > 1 or len(parts[0]["unsafe_pairs"]) != len(record["unsafe_pairs"])
        attacked += [{**part, INDEX: i, **({PAIR: j} if split else {})} for j, part in enumerate(parts)]
    return records, attacked


def restore(answers: list[dict], originals: list[dict], kind: str, variant: str) -> list[dict]:
    """Each answered record under its original image and questions, with what was asked in its `attack`.
    A record answered pair by pair is put back together (its UnharmPair answers the first pair's); one
    whose pairs were not all answered (a skipped record) is left out, as ckpt_infer leaves out a skip."""
    groups: dict[int, list[dict]] = {}
    for answered in answers:
        groups.setdefault(answered.pop(INDEX), []).append(answered)
    out = []
    for i in sorted(groups):  # the benchmark's order, whatever order the answers came in
        parts, original = groups[i], originals[i]
        if PAIR in parts[0]:
            parts.sort(key=lambda part: part.pop(PAIR))
            if len(parts) != len(original["unsafe_pairs"]):
                continue
            merged = parts[0]
            merged["unsafe_pairs"] = [part["unsafe_pairs"][0] for part in parts]
            images = [part["image_path"] for part in parts]
        else:
            (merged,) = parts
            images = merged["image_path"]
        asked = {"kind": kind, "variant": variant, "image_path": images,
                 "questions": [pair["question"] for pair in merged["unsafe_pairs"]]}
        merged["image_path"], merged["SDImage_path"] = original["image_path"], original["SDImage_path"]
        for pair, source in zip(merged["unsafe_pairs"], original["unsafe_pairs"], strict=True):
            pair["question"] = source["question"]
        merged["attack"] = asked
        out.append(merged)
    return out


def write_meta(raw: Path, settings, kind: str, variant: str) -> None:
    """The answers' meta beside the output, as ckpt_infer writes one: the raw answers' (records skipped,
    generation, environment), the checkpoint that was attacked (not the model an attack made from it),
    and the attack."""
    import json

    made = json.loads(meta_path(raw).read_text(encoding="utf-8")) if meta_path(raw).exists() else {}
    atomic_write_json(meta_path(Path(settings.output_file)),
                      {**made, "checkpoint": weights_identity(settings.checkpoint_path),
                       "attack": {"kind": kind, "variant": variant}})


def run_attack(kind: str, variant: str, settings, options: dict | None = None,
               forget_file: str | Path | None = None) -> dict:
    """Answer `settings.eval_file` under the attack into `settings.output_file`; ckpt_infer's summary.
    `options`: the attack's own (relearn's steps, ...); `forget_file`: the benchmark's forget split, which
    relearn trains on (None: the answered file)."""

    attack = attack_for(kind)
    attack.check_variant(variant)
    options = attack.check_options(dict(options or {}))
    work = work_dir(settings.output_file)
    work.mkdir(parents=True, exist_ok=True)
    originals, attacked = attacked_records(kind, variant, settings.eval_file, work)
    attacked_file = work / f"{variant}.json"
    atomic_write_json(attacked_file, attacked)
    raw = work / f"{variant}_answers.json"
    answering = attack.prepare(variant, dataclasses.replace(settings, eval_file=str(attacked_file)), work, options,
                               forget_file=None if forget_file is None else Path(forget_file))
    summary = run_inference(dataclasses.replace(answering, output_file=str(raw)),
                            model_transform=attack.model_transform(variant))
    atomic_write_json(settings.output_file, restore(read_json_records(raw), originals, kind, variant))
    write_meta(raw, settings, kind, variant)
    return {**summary, "output_file": str(settings.output_file), "attack": {"kind": kind, "variant": variant}}


def build_parser() -> argparse.ArgumentParser:
    """The attack's own flags, then every ckpt_infer flag (how the attacked records are answered)."""

    parser = argparse.ArgumentParser(prog="safeeraser attack", description=__doc__, parents=[infer_parser()],
                                     conflict_handler="resolve", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", required=True, choices=list(REGISTRY))
    parser.add_argument("--variant", required=True, help="the attack's variant (e.g. role_play, crop)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="the attack's own options (relearn: steps, every, lr, r; pgd: eps, alpha, steps, every, "
                             "size); repeat for several")
    parser.add_argument("--forget_file", default=None,
                        help="the benchmark's forget split (all_train.json), which relearn trains on (default: the "
                             "--eval_file's own records)")
    return parser


def parse_options(items: list[str]) -> dict:
    """KEY=VALUE strings as typed values (YAML's reading of the value: 10 is an int, 1e-4 a float)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AttackError(f"--option {item!r}: expected KEY=VALUE")
        parsed = yaml.safe_load(value)
        out[key] = float(value) if isinstance(parsed, str) and _is_float(value) else parsed
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    kind, variant, options, forget = args.pop("kind"), args.pop("variant"), args.pop("option"), args.pop("forget_file")
    try:
        summary = run_attack(kind, variant, InferSettings(**args), parse_options(options), forget_file=forget)
    except (AttackError, DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0
