"""`safeeraser benchmark-eval`: a model's (and checkpoint's) scores on a benchmark's tasks, split by split,
written as one JSON file."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safeeraser.benchmarks import REGISTRY, benchmark_for
from safeeraser.benchmarks.evaluate import evaluate_split, likelihood_split
from safeeraser.eval.forget_quality import forget_quality
from safeeraser.io import DataError, atomic_write_json, ensure_writable_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safeeraser benchmark-eval", description=__doc__)
    p.add_argument("--benchmark", required=True, choices=sorted(REGISTRY))
    p.add_argument("--data_path", required=True, help="the benchmark's folder as released")
    p.add_argument("--splits", required=True,
                   help="comma-separated splits to score, e.g. forget_10,retain_90,Test_Set:forget_10 (the test "
                        "records of forget_10's profiles)")
    p.add_argument("--model_path", required=True)
    p.add_argument("--checkpoint_path", default=None, help="adapter or full model folder (omit: the model itself)")
    p.add_argument("--oracle_checkpoint", default=None,
                   help="a model trained without the forget split (on --model_path): forget quality, the KS test of "
                        "its truth ratios on each forget split against the checkpoint's (TOFU-style benchmarks)")
    p.add_argument("--output_file", required=True)
    p.add_argument("--max_new_tokens", type=int, default=50, help="the benchmarks' own evaluations stop at 50")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--dtype", default="auto")
    return p


def check_splits(bench, root: Path, splits: list[str]) -> dict[str, dict]:
    """{split: its tasks' items}: every split known to the benchmark (Test_Set:forget_10: filtered), read and
    checked before any model loads: one DataError naming the file, the record and the field."""
    problems = [bench.split_problem(s) for s in splits]
    if not splits or any(problems):
        raise DataError(next(filter(None, problems), "no split to score"))
    if bench.eval_items is None:
        raise DataError(f"{bench.name} has no evaluation tasks yet")
    return {split: bench.eval_items(Path(root), split) for split in splits}


def score_model(bench, root: Path, splits: list[str], model_path: str, checkpoint_path: str | None = None,
                oracle_checkpoint: str | None = None, max_new_tokens: int = 50, batch_size: int = 8,
                dtype: str = "auto") -> dict:
    """{split: scores} of a model (and checkpoint) on the benchmark's tasks, with the truth-ratio scores where
    the benchmark has them, and each forget split's forget quality against `oracle_checkpoint` (on model_path)."""
    from safeeraser.infer.engine import Generator
    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.models.loading import load_processor

    tasks = check_splits(bench, root, splits)
    processor = load_processor(model_path)
    model = load_for_generation(model_path, checkpoint_path, dtype).eval()
    generator = Generator(model, processor, batch_size=batch_size)
    scores = {}
    for s in splits:  # each split's answers kept beside its scores: what its intervals resample
        answers: dict = {}
        scores[s] = evaluate_split(generator, bench, tasks[s], max_new_tokens, answers)
        scores[s]["answers"] = answers
    # each split read once, for the model and then the oracle
    likely = {s: bench.likelihood_items(Path(root), s) for s in splits} if bench.likelihood_items else {}
    for s, items in likely.items():
        scores[s].update(likelihood_split(model, processor, bench, items, s, batch_size))
    if oracle_checkpoint:  # the checkpoint's model is no longer needed: the oracle is loaded in its stead
        del model, generator
        oracle = load_for_generation(model_path, oracle_checkpoint, dtype).eval()
        for split in bench.quality_splits(scores):
            theirs = likelihood_split(oracle, processor, bench, likely[split], split, batch_size)
            scores[split]["forget_quality"] = forget_quality(scores[split]["truth_ratios"], theirs["truth_ratios"])
    return scores


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bench = benchmark_for(args.benchmark)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if args.oracle_checkpoint and not Path(args.oracle_checkpoint).exists():
        print(f"error: --oracle_checkpoint {args.oracle_checkpoint}: not found", file=sys.stderr)
        return 2
    if args.max_new_tokens < 1 or args.batch_size < 1:
        print("error: --max_new_tokens and --batch_size must be >= 1", file=sys.stderr)
        return 2
    try:
        ensure_writable_dir(Path(args.output_file).parent, "--output_file")
        scores = score_model(bench, Path(args.data_path), splits, args.model_path, args.checkpoint_path,
                             args.oracle_checkpoint, args.max_new_tokens, args.batch_size, args.dtype)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_json(args.output_file, {"benchmark": bench.name, "data_path": str(args.data_path),
                                         "model_path": args.model_path, "checkpoint_path": args.checkpoint_path,
                                         "max_new_tokens": args.max_new_tokens, "scores": scores})
    print(json.dumps(scores, indent=1))
    return 0
