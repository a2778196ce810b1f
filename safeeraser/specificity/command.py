"""`safeeraser specificity`: run the model on the benchmarks and score it, or (`score`) score
predictions alone, so that results from elsewhere are scored by the same rules."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from safeeraser.eval.judges import ALIASES, JUDGES, judge_class
from safeeraser.eval.judges.asker import ChatSettings
from safeeraser.eval.judges.base import JudgeConfigError
from safeeraser.io import DataError, atomic_write_json
from safeeraser.specificity import builtin_data_root
from safeeraser.specificity.base import PredictFn, Request
from safeeraser.specificity.lmms_eval_backend import LmmsEvalError, run_lmms_eval
from safeeraser.specificity.registry import BENCHMARKS, parse_benchmark_names
from safeeraser.specificity.runner import run_specificity
from safeeraser.specificity.score import score_predictions
from safeeraser.specificity.summary import format_table

BUILTIN = "builtin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safeeraser specificity",
        description="Score a (unlearned) LLaVA model on GQA, VizWiz, ScienceQA-IMG, VQAv2, POPE, MM-Vet and "
                    "MMBench from local files, and average the scores. 'score' scores predictions alone.")
    parser.add_argument("--model_path", help="hub id or folder of the base model")
    parser.add_argument("--checkpoint_path", help="unlearning checkpoint: a PEFT adapter folder, a model folder or "
                                                  "the reference's checkpoint.pt; omit for the vanilla model")
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS),
                        help=f"comma-separated, from {','.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--data_root", help="folder holding one folder per benchmark (gqa/, vizwiz/, ...), or "
                                            f"'{BUILTIN}' for the small fixture set shipped with the package "
                                            "(native backend; lmms-eval fetches its own data)")
    parser.add_argument("--output_dir", help="where predictions, scores and specificity.json go; a rerun "
                                             "resumes there")
    parser.add_argument("--limit", type=int, help="at most this many questions per benchmark, drawn with --seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int,
                        help="override every benchmark's budget (LLaVA-1.5: 128, MM-Vet 1024)")
    parser.add_argument("--dtype", default="auto", help="auto, bf16, fp16 or fp32")
    parser.add_argument("--backend", choices=("native", "lmms-eval"), default="native",
                        help="native: this package's engine and scorers; lmms-eval: its CLI on the merged model")
    parser.add_argument("--judge", choices=[*JUDGES, *ALIASES], default="keyword",
                        help="MM-Vet's grader: openai (any OpenAI-compatible endpoint; key from OPENAI_API_KEY); "
                             "a judge that does not grade answers (keyword, alias offline, or a safety "
                             "classifier) leaves MM-Vet unscored")
    parser.add_argument("--judge_model", default=None, help="default: the judge's own (gpt-4o for openai)")
    parser.add_argument("--base_url", default=None, help="judge endpoint (default: OPENAI_BASE_URL or OpenAI)")
    parser.add_argument("--judge_cache", default=None, help="grade cache (default: <output_dir>/mmvet_grades.jsonl)")
    parser.add_argument("--lmms_eval_model", default="llava_hf", help="lmms-eval's --model for the merged model")
    actions = parser.add_subparsers(dest="action", title="subcommands", metavar="score")
    score = actions.add_parser("score", help="score a predictions file",
                               description="Score predictions (JSON lines or a JSON list with question_id and "
                                           "answer, or LLaVA's text) by a benchmark's rules.")
    score.add_argument("--benchmark", required=True, choices=list(BENCHMARKS))
    score.add_argument("--predictions", required=True)
    score.add_argument("--annotations", nargs="+",
                       help="the benchmark's folder, or its official annotation file(s); omit when the "
                            "predictions carry their references (this command's predictions.jsonl)")
    score.add_argument("--output", help="also write the scores to this JSON file")
    return parser


class _LoadOnFirstCall:
    """A predict_fn that loads the model when first asked: the data is checked before the model
    loads, and a run with everything already answered never loads it."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.predict: PredictFn | None = None

    def __call__(self, requests: list[Request]) -> list[str]:
        if self.predict is None:
            from safeeraser.specificity.engine_predict import load_engine_predict_fn

            self.predict = load_engine_predict_fn(self.args.model_path, self.args.checkpoint_path,
                                                  self.args.batch_size, self.args.dtype)
        return self.predict(requests)


def _score(args: argparse.Namespace) -> int:
    scores = score_predictions(args.benchmark, args.predictions, args.annotations)
    if args.output:
        atomic_write_json(args.output, scores)
    print(json.dumps(scores, indent=2, ensure_ascii=False))
    return 0


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    required = ("model_path", "output_dir") + (("data_root",) if args.backend == "native" else ())
    missing = [f"--{name}" for name in required if getattr(args, name) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.checkpoint_path is not None and not Path(args.checkpoint_path).exists():
        parser.error(f"--checkpoint_path {args.checkpoint_path} does not exist")
    benchmarks = parse_benchmark_names(args.benchmarks)
    if args.backend == "lmms-eval":
        summary = run_lmms_eval(args.model_path, args.checkpoint_path, benchmarks, Path(args.output_dir),
                                limit=args.limit, seed=args.seed, batch_size=args.batch_size,
                                model=args.lmms_eval_model, dtype=args.dtype)
    else:
        data_root = builtin_data_root() if args.data_root == BUILTIN else Path(args.data_root)
        grader = None
        judge = judge_class(args.judge)
        if judge.grades_mmvet:
            from safeeraser.specificity.chat_grader import ChatGrader

            grader = ChatGrader(ChatSettings(model=args.judge_model or judge.default_model, base_url=args.base_url),
                                args.judge_cache or Path(args.output_dir) / "mmvet_grades.jsonl")
        summary = run_specificity(
            _LoadOnFirstCall(args), benchmarks, data_root, args.output_dir, limit=args.limit, seed=args.seed,
            grader=grader,
            max_new_tokens=args.max_new_tokens,
            run_info={"model_path": args.model_path, "checkpoint_path": args.checkpoint_path})
    print(format_table(summary))
    print(f"wrote {Path(args.output_dir) / 'specificity.json'}")
    return 0


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: one line on stderr, exit code 2. A CheckpointError can
    only come from the checkpoint module once it is imported; scoring alone never imports it (torch)."""
    checkpoint = sys.modules.get("safeeraser.models.checkpoint")

    return (DataError, LmmsEvalError, JudgeConfigError) + ((checkpoint.CheckpointError,) if checkpoint else ())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _score(args) if args.action == "score" else _run(args, parser)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
