"""ckpt_infer: an (unlearned) checkpoint's answers on a SafeEraser file, in the reference's schema.

Per record: `unsafe_pairs[i].model_response1..3` (three samples on the harmful image; the dataset's
`model_response` is removed), `unsafe_pairs[i].sd_response` (the question on the SD image) and
`UnharmPair_*.Prediction`, regenerated. Every other field is kept. Records are generated in chunks;
each finished chunk is appended to `<output>.partial.jsonl`, so `--resume` continues a killed run.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from safeeraser.io import DataError, append_jsonl, atomic_write_json, read_jsonl_tolerant

N_SAMPLES = 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ckpt_infer.py", description=__doc__)
    p.add_argument("--eval_file", required=True, help="all_train.json or all_val.json")
    p.add_argument("--model_path", default="llava-hf/llava-1.5-7b-hf", help="hub id or folder of the base model")
    p.add_argument("--checkpoint_path", default=None,
                   help="adapter folder, full model folder or the reference's checkpoint.pt; omit for vanilla")
    p.add_argument("--output_file", required=True)
    p.add_argument("--loss_type", default=None, help="the unlearning method (recorded only)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_new_tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top_p", type=float, default=0.9)
    p.add_argument("--greedy", action="store_true", help="greedy decoding for every answer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--lora_alpha", type=int, default=256,
                   help="LoRA alpha of a reference checkpoint.pt, which does not record it (reference: 256)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its partial file")
    p.add_argument("--strict", action="store_true", help="stop at a record that cannot be processed")
    p.add_argument("--chunk_records", type=int, default=32, help="records generated (and saved) together")
    p.add_argument("--limit", type=int, default=0, help="only the first N records")
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    p.add_argument("--engine", choices=["auto", "fast", "generate"], default="auto",
                   help="hf backend: our decoding loop (fast), transformers' generate, or the family's choice "
                        "(auto); both give the same answers")
    return p


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


def run_inference(args) -> dict:
    from tqdm.auto import tqdm

    from safeeraser.data.encode import ImageLoadError
    from safeeraser.data.records import load_benchmark
    from safeeraser.infer.engine import GenSettings, Generator
    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.models.loading import load_processor

    records = load_benchmark(args.eval_file, check_images=False)
    if args.limit:
        records = records[: args.limit]
    out_path = Path(args.output_file)
    part = partial_path(out_path)
    done: dict[int, dict] = {}
    if args.resume:
        done = {row["index"]: row for row in read_jsonl_tolerant(part)}
    elif part.exists():
        part.unlink()
    todo = [r for r in records if r.index not in done]

    settings = GenSettings(max_new_tokens=args.max_new_tokens, greedy=args.greedy, temperature=args.temperature,
                           top_p=args.top_p, seed=args.seed)
    if todo:
        processor = load_processor(args.model_path)
        if args.backend == "vllm":
            from safeeraser.infer.vllm_backend import VllmGenerator

            generator = VllmGenerator(args.model_path, args.checkpoint_path, processor)
        else:
            model = load_for_generation(args.model_path, args.checkpoint_path, args.dtype,
                                        reference_lora_alpha=args.lora_alpha)
            generator = Generator(model, processor, batch_size=args.batch_size, engine=args.engine)
        total = sum(sum(q.num_return_sequences for q in _requests(r, r.index)[0]) for r in todo)
        bar = tqdm(total=total, desc="responses", unit="resp", dynamic_ncols=True)
        for start in range(0, len(todo), args.chunk_records):
            chunk = todo[start:start + args.chunk_records]
            rows = []
            reqs, owners = [], []
            for rec in chunk:
                try:  # preprocess now so that a broken image costs one record, not the chunk
                    generator.encoder.image(rec.image)
                    generator.encoder.image(rec.sd_image)
                except ImageLoadError as exc:
                    if args.strict:
                        raise DataError(f"{args.eval_file}: record {rec.index}: {exc}") from None
                    rows.append({"index": rec.index, "skipped": str(exc)})
                    continue
                r, slots = _requests(rec, rec.index)
                owners.append((rec, slots, len(reqs), len(reqs) + len(r)))
                reqs += r
            answers = generator.generate(reqs, settings)
            for rec, slots, a, b in owners:
                rows.append({"index": rec.index, "record": fill_record(rec.raw, slots, answers[a:b])})
            bar.update(sum(q.num_return_sequences for q in reqs))
            stats = generator.stats
            if stats.seconds:
                bar.set_postfix(resp_s=f"{stats.responses / stats.seconds:.1f}",
                                tok_s=f"{stats.new_tokens / stats.seconds:.0f}")
            append_jsonl(part, rows)  # a chunk is saved whole before the next starts
            done.update({row["index"]: row for row in rows})
        bar.close()
        stats = generator.stats
    else:
        stats = None

    skipped = sorted(i for i, row in done.items() if "skipped" in row)
    outputs = [done[r.index]["record"] for r in records if r.index in done and "record" in done[r.index]]
    atomic_write_json(out_path, outputs)
    part.unlink(missing_ok=True)
    summary = {"records": len(outputs), "skipped": len(skipped), "skipped_records": skipped,
               "output_file": str(out_path)}
    if stats is not None and stats.seconds > 0:
        summary.update(responses=stats.responses, new_tokens=stats.new_tokens,
                       responses_per_s=stats.responses / stats.seconds,
                       new_tokens_per_s=stats.new_tokens / stats.seconds)
    return summary


def format_summary(s: dict) -> str:
    line = f"wrote {s['records']} records to {s['output_file']}"
    if s["skipped"]:
        line += f"; skipped {s['skipped']} that could not be processed: records {s['skipped_records']}"
    if "responses" in s:
        line += (f"\n{s['responses']} responses, {s['new_tokens']} new tokens, "
                 f"{s['responses_per_s']:.1f} responses/s, {s['new_tokens_per_s']:.0f} new tokens/s")
    return line


def main(argv: list[str] | None = None) -> int:
    from safeeraser.models.checkpoint import CheckpointError
    from safeeraser.models.families import UnsupportedFamily

    args = build_parser().parse_args(argv)
    try:
        summary = run_inference(args)
    except (DataError, CheckpointError, UnsupportedFamily) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0
