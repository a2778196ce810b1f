"""`eval_all.py`: the reference's command line, with the judge made configurable."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from safeeraser.eval.evaluate import default_cache_path, evaluate, stats_path_for
from safeeraser.eval.judges import BACKENDS, JUDGES, judge_class, make_judge
from safeeraser.eval.judges.asker import ChatSettings
from safeeraser.eval.judges.base import JudgeConfigError
from safeeraser.eval.judges.local import DTYPES
from safeeraser.eval.matching import load_matched
from safeeraser.eval.mia import DEFAULT_ATTACKS, REGISTRY as MIA_ATTACKS
from safeeraser.eval.metrics import format_table
from safeeraser.eval.reference_rules import AGGREGATES
from safeeraser.io import DataError, atomic_write_json, ensure_writable_dir


def build_parser() -> argparse.ArgumentParser:
    defaults = ChatSettings()
    p = argparse.ArgumentParser(
        prog="eval_all.py",
        description="SafeEraser metrics: ASR, RR, SARR, ROUGE-L and GPT-Eval of ckpt_infer's answers.",
    )
    p.add_argument("--input_file", required=True, help="answers written by ckpt_infer (JSON or JSON lines)")
    p.add_argument("--output_file_rr", required=True, help="judged JSON to write; the stats go to the same stem + .txt")
    p.add_argument("--file_refer", required=True, help="the dataset file the answers were generated from")
    p.add_argument(
        "--judge",
        choices=list(JUDGES),
        default="openai",
        help="a judge of the registry (safeeraser/eval/judges/: the README's table says which rates each "
        "gives; rates a judge cannot produce are n/a)",
    )
    p.add_argument(
        "--judge_model",
        default=None,
        help="the served model's name, or with --backend hf/vllm a local folder or hub id "
        "(default: the judge's own, e.g. gpt-4o, meta-llama/Llama-Guard-3-8B)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="server",
        help="server: an OpenAI-compatible endpoint; hf: transformers in this process; vllm: vLLM in this process",
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
        help="retries on 429/5xx/timeouts/malformed replies (default: %(default)s)",
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=defaults.backoff,
        help="seconds before the first retry, doubled at each one (a local judge server needs less; "
        "default: %(default)s)",
    )
    p.add_argument("--templates", choices=("ours", "reference"), default="ours",
                   help="the openai judge's prompts: ours, or the SafeEraser code's own, read from "
                        "--reference_dir (parsed, never run)")
    p.add_argument("--reference_dir", default=None, help="a checkout of the SafeEraser repository")
    p.add_argument("--aggregate", choices=AGGREGATES, default="ours",
                   help="reference: also the SafeEraser code's counts and rates (its skips, its reading of "
                        "replies, 0 for nothing counted), under its key names")
    p.add_argument("--batch_size", type=int, default=8, help="hf backend: prompts per batch (default: %(default)s)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="hf/vllm backends: weights dtype")
    p.add_argument("--device", default=None, help="hf backend: torch device (default: cuda if available)")
    p.add_argument(
        "--cache_file", default=None, help="judge reply cache, JSON lines (default: <output_file_rr>.judge_cache.jsonl)"
    )
    g = p.add_argument_group("judge-free metrics (optional; they load the model)")
    g.add_argument("--model_path", default=None,
                   help="base model: adds each view's mean answer NLL and probability (forget, retain, PD) "
                        "under the unlearned and the vanilla model to the stats")
    g.add_argument("--checkpoint_path", default=None, help="the unlearned adapter / model (omit: vanilla only)")
    g.add_argument("--unseen_file", default=None,
                   help="harmful items the vanilla model never trained on: adds the membership attacks' AUCs of "
                        "the forget set (--file_refer) against them")
    g.add_argument("--mia_attacks", default=",".join(DEFAULT_ATTACKS),
                   help=f"membership attacks, comma-separated, of {', '.join(MIA_ATTACKS)} (reference needs "
                        "--mia_reference; gradient_norm costs a backward per example)")
    g.add_argument("--mia_reference", default=None,
                   help="a model folder that never saw the forget set (the base model, a retain-only model): the "
                        "reference attack's calibration")
    g.add_argument("--oracle_checkpoint", default=None,
                   help="a model retrained without the forget set (on --model_path, as --checkpoint_path): its AUCs "
                        "and each attack's privacy leak (MUSE's PrivLeak) against it")
    g.add_argument("--likelihood_batch_size", type=int, default=8)
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def check_paths(args: argparse.Namespace, cache_file: Path) -> None:
    """Outputs must not overwrite the inputs or each other (e.g. --output_file_rr x.txt is its own stats file)."""
    out = Path(args.output_file_rr)
    named = {
        "--input_file": Path(args.input_file),
        "--file_refer": Path(args.file_refer),
        "--output_file_rr": out,
        f"the stats file {stats_path_for(out)}": stats_path_for(out),
        "--cache_file": cache_file,
    }
    seen: dict[Path, str] = {}
    for what, path in named.items():
        key = path.resolve()
        if key in seen:
            raise DataError(f"{what} and {seen[key]} are the same file ({path}); choose another "
                            f"{'--output_file_rr (the stats go to its stem + .txt)' if 'stats' in what else what}")
        seen[key] = what
    if out.is_dir():
        raise DataError(f"--output_file_rr {out} is a folder; give a file path")
    if cache_file.is_dir():
        raise DataError(f"--cache_file {cache_file} is a folder; give a file path")
    # before any judging: an output that cannot be written would be found after every call was paid for
    ensure_writable_dir(out.parent, "--output_file_rr")
    ensure_writable_dir(cache_file.parent, "--cache_file")


def format_likelihood(report: dict) -> str:
    lines = [f"{'model':<10} {'view':<7} {'mean NLL':>9} {'mean p':>7}"]
    for name in ("unlearned", "vanilla"):
        for view, v in report.get(name, {}).get("views", {}).items():
            nll = "n/a" if v["mean_nll"] is None else f"{v['mean_nll']:.3f}"
            prob = "n/a" if v["mean_prob"] is None else f"{v['mean_prob']:.3f}"
            lines.append(f"{name:<10} {view:<7} {nll:>9} {prob:>7}")
        auc = report.get(name, {}).get("membership_auc")
        if auc:
            shown = ", ".join(f"{k} n/a" if auc[k] is None else
                              f"{k} {auc[k]:.3f} ({auc['distance'][k]:.3f} from 0.5, "
                              f"{'no lean' if auc['leans'][k] == 'neither' else 'leans ' + auc['leans'][k]})"
                              for k in auc["distance"])
            lines.append(f"{name:<10} membership AUC (forget vs unseen; 0.5 = looks unseen, below it = less likely "
                         f"than unseen, as telling as above): {shown}")
            if auc.get("privacy_leak"):
                leak = ", ".join(f"{k} n/a" if v is None else f"{k} {v:+.1f}%" for k, v in auc["privacy_leak"].items())
                lines.append(f"{name:<10} privacy leak against the oracle (0 = as if never trained on it): {leak}")
    oracle = report.get("oracle", {}).get("membership_auc")
    if oracle:
        lines.append("oracle     membership AUC: " + ", ".join(
            f"{k} n/a" if oracle[k] is None else f"{k} {oracle[k]:.3f}" for k in oracle["distance"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from safeeraser.numerics import passive_openmp_wait

    passive_openmp_wait()  # before torch loads
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (args.concurrency < 1 or args.max_retries < 0 or args.timeout <= 0 or args.batch_size < 1
            or not 0 <= args.backoff < float("inf")):
        print("error: --concurrency and --batch_size must be >= 1, --max_retries >= 0, --timeout > 0 and "
              "--backoff a finite number >= 0", file=sys.stderr)
        return 2
    if (args.checkpoint_path or args.unseen_file) and not args.model_path or args.likelihood_batch_size < 1:
        print("error: --checkpoint_path and --unseen_file need --model_path (the judge-free metrics), and "
              "--likelihood_batch_size must be >= 1", file=sys.stderr)
        return 2
    attacks = [a.strip() for a in args.mia_attacks.split(",") if a.strip()]
    problem = next((f"unknown membership attack '{a}'; choose from {', '.join(MIA_ATTACKS)}"
                    for a in attacks if a not in MIA_ATTACKS), None)
    if problem is None and "reference" in attacks and not args.mia_reference:
        problem = "--mia_attacks reference needs --mia_reference (a model that never saw the forget set)"
    if problem is None and (args.mia_reference or args.oracle_checkpoint) and not args.unseen_file:
        problem = "--mia_reference and --oracle_checkpoint need --unseen_file (the membership attacks' non-members)"
    for flag, path in (("--mia_reference", args.mia_reference), ("--oracle_checkpoint", args.oracle_checkpoint)):
        if problem is None and path and not Path(path).exists():  # before the judge is paid
            problem = f"{flag} {path}: not found"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    cache_file = Path(args.cache_file) if args.cache_file else default_cache_path(args.output_file_rr)
    try:
        check_paths(args, cache_file)
        # The input files first: a malformed file is reported at once, before a model or client loads.
        matched = load_matched(args.input_file, args.file_refer)
        judge_class(args.judge).check_data([m.dataset for m in matched], str(args.file_refer))  # before any model loads
        if args.unseen_file:  # before the judge is paid: an unseen file with members would waste the run
            from safeeraser.eval.likelihood import check_unseen

            check_unseen(args.file_refer, args.unseen_file)
        settings = ChatSettings(
            model=args.judge_model or getattr(judge_class(args.judge), "default_model", None),
            base_url=args.base_url or None,
            api_key=args.api_key,
            concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.max_retries,
            backoff=args.backoff,
        )
        judge = make_judge(args.judge, settings=settings, cache_path=cache_file, backend=args.backend,
                           batch_size=args.batch_size, dtype=args.dtype, device=args.device,
                           templates=args.templates, reference_dir=args.reference_dir)
        stats = evaluate(args.input_file, args.file_refer, args.output_file_rr, judge,
                         show_progress=not args.no_progress, matched=matched, aggregate=args.aggregate)
        if args.model_path:
            from safeeraser.eval.likelihood import likelihood_report

            stats["likelihood"] = likelihood_report(args.model_path, args.checkpoint_path, args.file_refer,
                                                    unseen_file=args.unseen_file,
                                                    batch_size=args.likelihood_batch_size, dtype=args.dtype,
                                                    attacks=attacks, reference_path=args.mia_reference,
                                                    oracle_checkpoint=args.oracle_checkpoint)
            atomic_write_json(stats_path_for(args.output_file_rr), stats)
            print(format_likelihood(stats["likelihood"]))
    except (DataError, JudgeConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = f"; the judgments received so far are kept in {cache_file}" if cache_file.exists() else ""
        print(f"interrupted{kept}", file=sys.stderr)
        return 130
    print(format_table(stats["stats_asr_rr"], stats["stats_unharmpair"], stats["ci"], stats.get("ci_method")))
    if "reference_aggregate" in stats:
        ref = stats["reference_aggregate"]
        print("reference aggregation: " + ", ".join(
            f"{k} {100 * ref[k]:.2f}" for k in ("unsafe_rate", "refuse_rate", "sd_refuse_rate", "average_rougeL",
                                               "average_gpt_score")))
    harmful = stats["degenerate"]["harmful"]
    if harmful["degenerate"]:
        print(f"degenerate harmful answers: {harmful['degenerate']}/{harmful['n']} "
              f"({', '.join(f'{k} {v}' for k, v in harmful['counts_by_reason'].items() if v)}): a low ASR from "
              "answers that say nothing is not forgetting")
    if stats["cost"]:
        cost = stats["cost"]
        print(
            f"judge cost: {cost['requests']} requests ({cost['retries']} retries, {cost['failed']} failed), "
            f"{cost['cache_hits']} cached, {cost['prompt_tokens']} prompt + {cost['completion_tokens']} completion tokens"
        )
    print(f"wrote {args.output_file_rr} and {stats_path_for(args.output_file_rr)}")
    return 0
