"""ckpt_infer: an (unlearned) checkpoint's answers on a SafeEraser file, in the reference's schema.

Per record: `unsafe_pairs[i].model_response1..3` (three samples on the harmful image; the dataset's
`model_response` is removed), `unsafe_pairs[i].sd_response` (the question on the SD image) and
`UnharmPair_*.Prediction`, regenerated. Every other field is kept. Records are generated in chunks;
each finished chunk is appended to `<output>.partial.jsonl`, so `--resume` continues a killed run made
the same way (`<output>.partial.meta.json` records how). The output keeps the reference's schema
(a JSON list of records); what made it is in `<output>.meta.json`.

Sharded (one process per GPU): `--shards N --shard_index K` answers the K-th of N contiguous blocks of the
records into `<output stem>.shard-K-of-N.json` (with its own meta, partial file and --resume); the same flags
with `--merge_shards` instead of `--shard_index` then join the N files into the output, in record order. A
record's answers are seeded from its index, so the merged file is the one a single process writes.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from safeeraser.data.records import load_benchmark
from safeeraser.infer.settings import FLUSH_SECONDS, InferSettings, add_arguments, as_settings
from safeeraser.io import DataError, append_jsonl, atomic_write_json, ensure_writable_dir, read_jsonl_tolerant
from safeeraser.io import read_json_records
from safeeraser.models.families import UnsupportedFamily
from safeeraser.numerics import current_mode
from safeeraser.progress import progress
from safeeraser.provenance import environment, file_sha256, model_identity, weights_identity
from safeeraser.reference.checkout import CheckoutError, inference_tags

N_SAMPLES = 3
# The flags that decide the answers, with the records, the model and the checkpoint: a partial file made
# with other values is not resumed. Not batch_size or chunk_records (answers do not depend on them), nor
# limit (a record's answers do not depend on how many records run).
ANSWER_FLAGS = ("max_new_tokens", "temperature", "top_p", "greedy", "seed", "backend", "engine", "dtype",
                "lora_alpha")
ANSWER_PARTS = ("eval_file", "model", "checkpoint", "generation")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ckpt_infer.py", description=__doc__)
    add_arguments(p)  # one flag per InferSettings field
    return p


def parse_settings(argv: list[str] | None = None) -> InferSettings:
    return InferSettings(**vars(build_parser().parse_args(argv)))


def _requests(rec, index: int):
    """The record's generation requests and where each answer goes. Keys seed sampling per slot."""
    from safeeraser.infer.engine import GenRequest

    reqs, slots = [], []
    base = index * 1000
    for j, pair in enumerate(rec.unsafe_pairs):
        reqs.append(GenRequest(rec.image, pair["question"], N_SAMPLES, key=base + 2 * j))
        slots.append(("harm", j))
        reqs.append(GenRequest(rec.sd_image, pair["question"], 1, key=base + 2 * j + 1))
        slots.append(("sd", j))
    for k, (name, pair) in enumerate(rec.unharm_pairs()):
        reqs.append(GenRequest(rec.image, pair["Question"], 1, key=base + 900 + k))
        slots.append(("unharm", name))
    return reqs, slots


def fill_record(raw: dict, slots, answers) -> dict:
    out = copy.deepcopy(raw)
    for (kind, where), ans in zip(slots, answers):
        if kind == "harm":
            pair = out["unsafe_pairs"][where]
            pair.pop("model_response", None)
            for i in range(N_SAMPLES):
                pair[f"model_response{i + 1}"] = ans[i]
        elif kind == "sd":
            out["unsafe_pairs"][where]["sd_response"] = ans[0]
        else:
            out[where]["Prediction"] = ans[0]
    return out


def partial_path(output_file: str | Path) -> Path:
    return Path(str(output_file) + ".partial.jsonl")


def meta_path(output_file: str | Path, partial: bool = False) -> Path:
    """The sidecar recording what made the output (or its partial file)."""
    return Path(str(output_file) + (".partial.meta.json" if partial else ".meta.json"))


def shard_path(output_file: str | Path, index: int, shards: int) -> Path:
    """Where shard `index` of `shards` writes its answers: beside the output, so that its meta, partial file
    and --resume are its own."""
    out = Path(output_file)
    return out.with_name(f"{out.stem}.shard-{index}-of-{shards}{out.suffix}")


def shard_block(n: int, index: int, shards: int) -> slice:
    """The records of shard `index` among `n`: contiguous blocks, so that joining them in shard order is
    record order."""
    return slice(index * n // shards, (index + 1) * n // shards)


def check_args(args) -> None:
    """Flag values that cannot work, reported before anything is read or loaded."""
    for flag, rule, value in as_settings(args).problems():
        raise DataError(f"--{flag} must be {rule}, got {value}")


def _looks_local(model_path: str) -> bool:
    """Whether --model_path is meant as a folder here: a hub id is `name` or `org/name`, so anything
    else is, and so is a path whose first folder exists here (a typo under models/)."""
    parts = Path(model_path).parts
    return (model_path.startswith((".", "/", "~")) or len(parts) > 2 or Path(model_path).exists()
            or (len(parts) == 2 and Path(parts[0]).is_dir()))


def check_paths(args, loads_model: bool = True) -> None:
    """The paths must work before the model is loaded: an error after an hour of generation loses it.
    A merge loads no model, so it needs no vLLM (its step may run on a machine without a GPU)."""
    eval_file, out = Path(args.eval_file), Path(args.output_file)
    if out.resolve() == eval_file.resolve() or (out.exists() and os.path.samefile(out, eval_file)):
        raise DataError(f"--output_file '{out}' is the --eval_file: writing it would overwrite the benchmark")
    if out.is_dir():
        raise DataError(f"--output_file '{out}' is a folder; give a file path")
    ensure_writable_dir(out.parent, f"--output_file '{out}'")
    if _looks_local(args.model_path):
        model = Path(args.model_path)
        problem = ("does not exist" if not model.exists() else "is not a folder" if not model.is_dir()
                   else "has no config.json (not a model folder)" if not (model / "config.json").is_file()
                   else None)
        if problem:
            raise DataError(f"--model_path '{args.model_path}' {problem}")
    if args.checkpoint_path and not Path(args.checkpoint_path).exists():
        raise DataError(f"--checkpoint_path '{args.checkpoint_path}' does not exist")
    if loads_model and args.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise DataError('--backend vllm needs vLLM: pip install -e ".[vllm]"')
    prompt_tags(args)  # a bad --reference_dir fails here, before any model loads


def prompt_tags(args):
    """The reference's inference conversation (--prompt_format reference), or None for the chat template."""
    if args.prompt_format != "reference":
        return None

    try:
        return inference_tags(args.reference_dir)
    except CheckoutError as exc:
        raise DataError(f"--reference_dir: {exc}") from None


def generation_meta(args) -> dict:
    """The settings an answer depends on. The prompt format only when it is not the default, so answers
    made before it was a setting keep their meta (and resume)."""
    import hashlib

    meta = {flag: getattr(args, flag) for flag in ANSWER_FLAGS}
    tags = prompt_tags(args)
    if tags is not None:
        meta["prompt_format"] = "reference"
        meta["prompt_sha256"] = hashlib.sha256(json.dumps(vars(tags), sort_keys=True).encode()).hexdigest()
    return meta


def run_meta(args) -> dict:
    """What makes this run's answers what they are, and the environment it ran in."""

    eval_file = Path(args.eval_file)
    run = {"limit": args.limit, "batch_size": args.batch_size, "chunk_records": args.chunk_records,
           "loss_type": args.loss_type}
    if args.shards > 1:
        run.update(shards=args.shards, shard_index=args.shard_index)
    try:
        model = model_identity(args.model_path)
    except ValueError as exc:  # a config.json that is not JSON
        raise DataError(f"--model_path '{args.model_path}': config.json is unreadable: {exc}") from None
    return {
        "eval_file": {"path": str(eval_file.resolve()), "sha256": file_sha256(eval_file)},
        "model": model,
        "checkpoint": weights_identity(args.checkpoint_path),
        "generation": generation_meta(args),
        "run": run,
        "environment": environment(),
    }


def _flat(obj, name: str = "") -> dict:
    if isinstance(obj, dict) and obj:
        return {k: v for key, value in obj.items() for k, v in _flat(value, f"{name}.{key}" if name else key).items()}
    return {name: obj}


def meta_changes(old: dict, new: dict, parts: tuple[str, ...]) -> list[str]:
    """`field old -> new` for every leaf of `parts` that differs."""
    a, b = (_flat({k: m.get(k) for k in parts}) for m in (old, new))
    return [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in dict.fromkeys([*b, *a]) if a.get(k) != b.get(k)]


def resume_rows(args, meta: dict) -> dict[int, dict]:
    """The partial file's rows when resuming a run made the same way; a fresh partial otherwise.
    The partial's meta is written before its first row, so rows always have the meta that made them."""
    part, part_meta = partial_path(args.output_file), meta_path(args.output_file, partial=True)
    rows = read_jsonl_tolerant(part) if args.resume else []
    if not rows:
        part.unlink(missing_ok=True)
        atomic_write_json(part_meta, meta)
        return {}
    if not part_meta.is_file():
        raise DataError(f"{part}: no {part_meta.name} beside it, so what made its rows is unknown; "
                        "run without --resume to start over")
    try:
        old = json.loads(part_meta.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{part_meta}: unreadable ({exc}); run without --resume to start over") from None
    changes = meta_changes(old, meta, ANSWER_PARTS)
    if changes:
        raise DataError(f"{part} was made by another run, and resuming would mix their answers: "
                        f"{'; '.join(changes)}. Run with the old settings, or without --resume to start over")
    changes = meta_changes(old, meta, ("environment",))
    if changes:
        print(f"warning: resuming {part}, made in another environment: {'; '.join(changes)}", file=sys.stderr)
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("index"), int):
            raise DataError(f"{part}: row {i}: no record index; run without --resume to start over")
    return {row["index"]: row for row in rows}


def chunk_end(todo: list, start: int, want: int, args) -> int:
    """Where the chunk from `start` ends: `want` records, but at least enough for one full batch of
    harmful-image requests (the fewest a record has; fewer would run the decoding loop part-empty),
    and never more than --chunk_records."""
    end, pairs = start, 0
    while end < len(todo) and end - start < args.chunk_records and (end - start < want or pairs < args.batch_size):
        pairs += len(todo[end].unsafe_pairs)
        end += 1
    return end


def overflow(generator, reqs, slots, max_new_tokens: int) -> dict | None:
    """The first request of a record whose prompt and answer do not fit in the model's positions.
    Such a record is skipped, not truncated: cutting the prompt from the left would cut the image's
    tokens or the question, and the answers would be to something other than the benchmark's question."""
    limit = generator.max_positions
    if not limit:
        return None
    for req, (kind, where) in zip(reqs, slots):
        tokens = generator.prompt_tokens(req)
        if tokens + max_new_tokens > limit:
            field = f"{where}.Question" if kind == "unharm" else f"unsafe_pairs[{where}].question"
            return {"field": field, "tokens": tokens, "positions": limit}
    return None


def _generator(args, model_transform=None):
    from safeeraser.infer.engine import Generator
    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.models.loading import load_processor

    processor = load_processor(args.model_path)
    if args.backend == "vllm":
        if model_transform is not None:
            raise DataError("--backend vllm loads the model itself: an attack that changes the model's weights "
                            "runs on --backend hf")
        from safeeraser.infer.vllm_backend import VllmGenerator

        return VllmGenerator(args.model_path, args.checkpoint_path, processor, inference_tags=prompt_tags(args))
    model = load_for_generation(args.model_path, args.checkpoint_path, args.dtype, reference_lora_alpha=args.lora_alpha)
    if model_transform is not None:  # e.g. the quantize attack: the merged model's weights rounded
        model_transform(model)
    return Generator(model, processor, batch_size=args.batch_size, engine=args.engine, inference_tags=prompt_tags(args))


def prepare_chunk(args, generator, chunk: list):
    """The chunk's generation requests, and rows for the records that cannot be answered: an unreadable
    image or a prompt too long for the model costs one record, not the chunk (or, with --strict, stops)."""
    from safeeraser.data.encode import ImageLoadError

    rows, reqs, owners = [], [], []
    for rec in chunk:
        r, slots = _requests(rec, rec.index)
        try:
            generator.encoder.image(rec.image)
            generator.encoder.image(rec.sd_image)
            too_long = overflow(generator, r, slots, args.max_new_tokens)
        except ImageLoadError as exc:
            row = {"index": rec.index, "skipped": str(exc)}
        else:
            if not too_long:
                owners.append((rec, slots, len(reqs), len(reqs) + len(r)))
                reqs += r
                continue
            row = {"index": rec.index, "too_long": too_long,
                   "skipped": f"field '{too_long['field']}': a prompt of {too_long['tokens']} tokens and "
                              f"--max_new_tokens {args.max_new_tokens} exceed the model's "
                              f"{too_long['positions']} positions"}
        if args.strict:
            raise DataError(f"{args.eval_file}: record {rec.index}: {row['skipped']}")
        rows.append(row)
    return rows, reqs, owners


def next_chunk_size(records: int, seconds: float, args) -> int:
    """How many records the next chunk should hold: as many as take about FLUSH_SECONDS at the pace of the
    last chunk; with pinned numerics, --chunk_records whatever the pace. A chunk's records are batched
    together, and a batch's padding can move the last bits of its answers' scores: a run that must
    compute the same numbers on another machine cannot let the clock choose its batches."""
    if current_mode() != "native":
        return args.chunk_records
    return int(FLUSH_SECONDS * records / max(seconds, 1e-6))


def generate_records(args, generator, todo: list, part: Path, done: dict[int, dict]):
    """Answer `todo`, appending each finished chunk to the partial file. Chunks are sized to take about
    FLUSH_SECONDS (timed as they run), so a kill loses that much work, not a whole --chunk_records."""

    from safeeraser.infer.engine import GenSettings

    settings = GenSettings(max_new_tokens=args.max_new_tokens, greedy=args.greedy, temperature=args.temperature,
                           top_p=args.top_p, seed=args.seed)
    responses = {r.index: sum(q.num_return_sequences for q in _requests(r, r.index)[0]) for r in todo}
    start, want = 0, 1  # nothing timed yet: the first chunk is the fewest records that fill a batch
    # closed on an error too, so that the error starts a line of its own
    with progress(total=sum(responses.values()), desc="responses", unit="resp", dynamic_ncols=True) as bar:
        while start < len(todo):
            end = chunk_end(todo, start, want, args)
            chunk = todo[start:end]
            t0 = time.perf_counter()
            rows, reqs, owners = prepare_chunk(args, generator, chunk)
            answers = generator.generate(reqs, settings) if reqs else []
            for rec, slots, a, b in owners:
                rows.append({"index": rec.index, "record": fill_record(rec.raw, slots, answers[a:b])})
            append_jsonl(part, rows)  # a chunk is saved whole before the next starts
            done.update({row["index"]: row for row in rows})
            want = next_chunk_size(len(chunk), time.perf_counter() - t0, args)
            start = end
            bar.update(sum(responses[rec.index] for rec in chunk))
            stats = generator.stats
            if stats.seconds:
                bar.set_postfix(resp_s=f"{stats.responses / stats.seconds:.1f}",
                                tok_s=f"{stats.new_tokens / stats.seconds:.0f}")
    return generator.stats


def _records(args) -> list:
    records = load_benchmark(args.eval_file, check_images=False)
    return records[: args.limit] if args.limit else records


def run_inference(settings: InferSettings, model_transform=None) -> dict:
    """Answer `settings.eval_file` into `settings.output_file` (an argparse Namespace of ckpt_infer's flags
    is taken too) and return the summary that format_summary prints. With --shards N, answer one block into
    its shard file, or (--merge_shards) join the shard files. `model_transform(model)` is applied to the
    loaded (merged) model before it answers: an attack that changes its weights."""
    args = as_settings(settings)
    check_args(args)  # flags, the data file and the paths first: each fails in well under a second
    if args.merge_shards:
        return merge_shards(args)
    records = _records(args)
    if args.shards > 1:
        records = records[shard_block(len(records), args.shard_index, args.shards)]
        args = dataclasses.replace(args, output_file=str(shard_path(args.output_file, args.shard_index,
                                                                    args.shards)))
    check_paths(args)
    out_path = Path(args.output_file)
    part = partial_path(out_path)
    meta = run_meta(args)
    done = resume_rows(args, meta)
    todo = [r for r in records if r.index not in done]
    stats = generate_records(args, _generator(args, model_transform), todo, part, done) if todo else None

    skipped = [r.index for r in records if "skipped" in done.get(r.index, {})]
    outputs = [done[r.index]["record"] for r in records if r.index in done and "record" in done[r.index]]
    # Another run's meta never sits beside this output: removed first, written once the output is.
    meta_path(out_path).unlink(missing_ok=True)
    atomic_write_json(out_path, outputs)
    atomic_write_json(meta_path(out_path), {**meta, "records": len(outputs), "skipped_records": skipped})
    part.unlink(missing_ok=True)
    meta_path(out_path, partial=True).unlink(missing_ok=True)
    summary = {"records": len(outputs), "skipped": len(skipped), "skipped_records": skipped,
               "skipped_reasons": {i: done[i]["skipped"] for i in skipped}, "output_file": str(out_path)}
    too_long = [i for i in skipped if "too_long" in done[i]]
    if too_long:
        summary["too_long"] = {"count": len(too_long), "first_record": too_long[0], **done[too_long[0]]["too_long"]}
    if stats is not None and stats.seconds > 0:
        summary.update(responses=stats.responses, new_tokens=stats.new_tokens,
                       responses_per_s=stats.responses / stats.seconds,
                       new_tokens_per_s=stats.new_tokens / stats.seconds)
    return summary


def _shard_meta(path: Path, index: int, shards: int) -> dict:
    made = meta_path(path)
    if not path.is_file() or not made.is_file():
        unfinished = " (unfinished: run it again with --resume)" if partial_path(path).exists() else ""
        raise DataError(f"{path}: shard {index} of {shards} is missing{unfinished}; answer it with --shards "
                        f"{shards} --shard_index {index} before merging")
    try:
        return json.loads(made.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{made}: unreadable ({exc}); answer shard {index} again") from None


def merge_shards(settings: InferSettings) -> dict:
    """Join the N shard files of `output_file` into it, in shard order (record order; skipped records are
    absent, as in one process's output), once each is checked to be made by the run these flags describe.
    Its meta is shard 0's, with the records summed, the skipped ones joined and `run.shards`. The shard
    files are then removed: the output holds all they hold, and a stale copy could be taken for a result."""

    args = as_settings(settings)
    check_args(args)
    n_records = len(_records(args))
    check_paths(args, loads_model=False)
    out, n = Path(args.output_file), args.shards
    meta = run_meta(args)
    outputs, skipped, metas = [], [], []
    for k in range(n):
        path = shard_path(out, k, n)
        made = _shard_meta(path, k, n)
        changes = meta_changes(made, meta, ANSWER_PARTS)
        if made.get("run", {}).get("limit") != args.limit:
            changes.append(f"run.limit {made.get('run', {}).get('limit')!r} -> {args.limit!r}")
        if changes:
            raise DataError(f"{path}: shard {k} of {n} was made by another run than this merge, and merging would "
                            f"mix their answers: {'; '.join(changes)}. Merge with the shard runs' flags, or answer "
                            "the shard again")
        rows = read_json_records(path)
        block = range(n_records)[shard_block(n_records, k, n)]
        lost = made.get("skipped_records") or []
        if len(rows) != made.get("records") or len(rows) + len(lost) != len(block) or any(i not in block for i in lost):
            raise DataError(f"{path}: {len(rows)} answered and {len(lost)} skipped records, but shard {k} of {n} "
                            f"is records {block.start} to {block.stop - 1} of {args.eval_file}; answer it again")
        elsewhere = meta_changes(metas[0], made, ("environment",)) if metas else []
        if elsewhere:  # the merged meta says shard 0's environment: say that this one's differs
            print(f"warning: {path} was made in another environment than shard 0: {'; '.join(elsewhere)}",
                  file=sys.stderr)
        outputs += rows
        skipped += lost
        metas.append(made)
    merged = {**metas[0], "run": {**metas[0]["run"], "shards": n}, "records": len(outputs),
              "skipped_records": skipped}
    merged["run"].pop("shard_index", None)
    meta_path(out).unlink(missing_ok=True)  # as in run_inference: never another run's meta beside the output
    atomic_write_json(out, outputs)
    atomic_write_json(meta_path(out), merged)
    for k in range(n):
        shard_path(out, k, n).unlink()
        meta_path(shard_path(out, k, n)).unlink()
    return {"records": len(outputs), "skipped": len(skipped), "skipped_records": skipped, "output_file": str(out),
            "shards": n}


SHOWN_REASONS = 10  # skipped records listed with their reason; the rest counted


def format_summary(s: dict) -> str:
    line = f"wrote {s['records']} records to {s['output_file']}"
    if "shards" in s:
        line += f" (merged from {s['shards']} shards)"
    if s["skipped"]:
        line += f"; skipped {s['skipped']} that could not be processed: records {s['skipped_records']}"
        reasons = list((s.get("skipped_reasons") or {}).items())
        for index, reason in reasons[:SHOWN_REASONS]:
            line += f"\n  record {index}: {reason}"
        if len(reasons) > SHOWN_REASONS:
            line += f"\n  ... and {len(reasons) - SHOWN_REASONS} more"
    if "too_long" in s:
        t = s["too_long"]
        line += (f"\nwarning: {t['count']} of them have a prompt too long for the model: with --max_new_tokens it "
                 f"exceeds the model's {t['positions']} positions (first: record {t['first_record']}, "
                 f"field '{t['field']}', {t['tokens']} prompt tokens)")
    if "responses" in s:
        line += (f"\n{s['responses']} responses, {s['new_tokens']} new tokens, "
                 f"{s['responses_per_s']:.1f} responses/s, {s['new_tokens_per_s']:.0f} new tokens/s")
    return line


def _model_errors() -> tuple:
    """The loaders' user errors; imported only once a run has failed, as they import torch."""
    from safeeraser.models.checkpoint import CheckpointError

    return CheckpointError, UnsupportedFamily


def main(argv: list[str] | None = None) -> int:
    from safeeraser.numerics import passive_openmp_wait

    passive_openmp_wait()  # before torch loads
    settings = parse_settings(argv)
    try:
        summary = run_inference(settings)
    except DataError as exc:  # matched first: bad input is reported without importing torch
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _model_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0
