"""`eval_all.py`: the reference's command line, with the judge made configurable."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from safeeraser.eval.evaluate import default_cache_path, evaluate, stats_path_for
from safeeraser.eval.judges import JUDGES, make_judge
from safeeraser.eval.judges.base import JudgeConfigError
from safeeraser.eval.judges.chat import ChatSettings
from safeeraser.eval.metrics import format_table
from safeeraser.io import DataError


def build_parser() -> argparse.ArgumentParser:
    defaults = ChatSettings()
    p = argparse.ArgumentParser(
        prog="eval_all.py",
        description="SafeEraser metrics: ASR, RR, SARR, ROUGE-L and GPT-Eval of ckpt_infer's answers.",
    )
    p.add_argument("--input_file", required=True, help="answers written by ckpt_infer (JSON or JSON lines)")
    p.add_argument("--output_file_rr", required=True, help="judged JSON to write; the stats go to the same stem + .txt")
    p.add_argument("--file_refer", required=True, help="the dataset file the answers were generated from")
    p.add_argument("--judge", choices=JUDGES, default="openai", help="openai: a chat model; keyword: offline rules")
    p.add_argument(
        "--judge_model", default=defaults.model, help="chat model for the openai judge (default: %(default)s)"
    )
    p.add_argument(
        "--base_url",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the OpenAI API)",
    )
    p.add_argument(
        "--api_key",
        default=None,
        help="accepted for compatibility with the reference; prefer the OPENAI_API_KEY environment variable",
    )
    p.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="requests in flight (default: %(default)s)"
    )
    p.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per request (default: %(default)s)")
    p.add_argument(
        "--max_retries",
        type=int,
        default=defaults.max_retries,
        help="retries on 429/5xx/timeouts (default: %(default)s)",
    )
    p.add_argument(
        "--cache_file", default=None, help="judge reply cache, JSON lines (default: <output_file_rr>.judge_cache.jsonl)"
    )
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.concurrency < 1 or args.max_retries < 0 or args.timeout <= 0:
        print("error: --concurrency must be >= 1, --max_retries >= 0 and --timeout > 0", file=sys.stderr)
        return 2
    settings = ChatSettings(
        model=args.judge_model,
        base_url=args.base_url or None,
        api_key=args.api_key,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    cache_file = args.cache_file or default_cache_path(args.output_file_rr)
    try:
        judge = make_judge(args.judge, settings=settings, cache_path=cache_file)
        stats = evaluate(
            args.input_file, args.file_refer, args.output_file_rr, judge, show_progress=not args.no_progress
        )
    except (DataError, JudgeConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = f"; the judgments received so far are kept in {cache_file}" if args.judge == "openai" else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return 130
    print(format_table(stats["stats_asr_rr"], stats["stats_unharmpair"]))
    if stats["cost"]:
        cost = stats["cost"]
        print(
            f"judge cost: {cost['requests']} requests ({cost['retries']} retries, {cost['failed']} failed), "
            f"{cost['cache_hits']} cached, {cost['prompt_tokens']} prompt + {cost['completion_tokens']} completion tokens"
        )
    print(f"wrote {args.output_file_rr} and {stats_path_for(args.output_file_rr)}")
    return 0
