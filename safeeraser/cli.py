"""The `safeeraser` command: one subcommand per job, each a thin call into the package."""
from __future__ import annotations

import argparse
import logging
import sys

from safeeraser.benchmarks import REGISTRY as BENCHMARKS  # light: names only


def _user_errors():
    from safeeraser.io import DataError
    from safeeraser.models.families import UnsupportedFamily
    from safeeraser.train.config import ConfigError

    errors = (DataError, ConfigError, FileExistsError, UnsupportedFamily)
    # The training loop imports torch: when it never ran, its error cannot have been raised, and a bad
    # input must not wait for torch to be reported.
    loop = sys.modules.get("safeeraser.train.loop")
    return errors + ((loop.TrainingDiverged,) if loop else ())


def cmd_make_tiny(args) -> int:
    from safeeraser.models.tiny import make_tiny

    print(make_tiny(args.out, family=args.family, size=args.size, seed=args.seed))
    return 0


def cmd_make_mini(args) -> int:
    if args.benchmark != "safeeraser":  # another benchmark's mini, in its released format
        from safeeraser.benchmarks import benchmark_for

        bench = benchmark_for(args.benchmark)
        out = bench.make_mini(args.out or f"dataset/mini-{args.benchmark}", seed=args.seed)
        for split in bench.splits:
            print(f"{split}: {len(bench.read(out, split))} records")
        print(f"wrote {out}")
        return 0
    from safeeraser.data.mini import make_mini

    for name, path in make_mini(args.out or "dataset/mini", seed=args.seed, train_per_category=args.train_per_category,
                                val_per_category=args.val_per_category).items():
        print(f"{name}: {path}")
    return 0


def cmd_collect(args) -> int:
    from safeeraser.pipeline.collect import collect, write_collected
    from safeeraser.pipeline.report import markdown_table

    result = collect(args.row, args.runs, resamples=args.resamples, seed=args.bootstrap_seed)
    files = write_collected(result, args.out, title=args.title, stem=args.stem)
    for note in result.notes:
        print(f"note: {note}")
    print(markdown_table(result.rows))
    print(f"report: {', '.join(str(f) for f in files)}")
    return 0


def is_main_process() -> bool:
    """Under `accelerate launch` every process runs the command: only the main one reports."""
    from accelerate import PartialState

    return PartialState().is_main_process


def cmd_finetune(args) -> int:
    from safeeraser.pipeline.vanilla import finetune, format_check
    from safeeraser.train.config import CONFIG_DIR, TrainRequest

    out, report = finetune(TrainRequest(args.config or str(CONFIG_DIR / "finetune_tiny.yaml"), tuple(args.overrides)))
    if is_main_process():
        print(format_check(report))
        print(f"saved to {out}")
    return 0


def cmd_forget(args) -> int:
    from safeeraser.train.config import load_config, load_records_first

    cfg = load_config(args.config, args.overrides)
    records = load_records_first(cfg)  # bad data is reported before torch is even imported
    from safeeraser.numerics import pin

    pin(cfg.optim.numerics)  # before torch loads: its libraries read the variables once
    from safeeraser.train.loop import run_training

    out = run_training(cfg, records=records)
    if is_main_process():
        print(f"saved to {out}")
    return 0


def cmd_run(args) -> int:
    from safeeraser.pipeline.experiment import load_experiment, run_experiment
    from safeeraser.pipeline.launchers import StepsFailed

    if args.dry_run:
        from safeeraser.pipeline.launchers.plan import describe

        launcher = [f"launcher.name={args.launcher}"] if args.launcher else []
        print(describe(load_experiment(args.config, [*args.overrides, *launcher])))
        return 0
    try:
        rows, runner = run_experiment(args.config, args.overrides, launcher=args.launcher)
    except StepsFailed as exc:  # the other steps have run: what failed, with its log, and what it held up
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(runner.table(rows))
    print(f"steps run: {len(runner.executed)}" if runner.executed else "steps run: 0 (all were done already)")
    if args.compare:
        return compare_files(args.compare, runner.report_path, args.tol)
    return 0


def compare_files(reference: str, fresh, tol: float) -> int:
    """Print how a fresh report differs from a reference one; exit code 1 when any cell does."""
    from safeeraser.pipeline.compare import compare_reports, load_report, summary

    ref, new = load_report(reference), load_report(fresh)
    diffs = compare_reports(ref, new, tol=tol)
    print(f"compared with {reference}: {summary(ref, new, diffs)}")
    return 1 if diffs else 0


def cmd_compare(args) -> int:
    return compare_files(args.reference, args.fresh, args.tol)


def add_config_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--config", "--config-name", "--config_name", dest="config", default=default,
                   help="YAML file, or a name under config/ with or without .yaml (Hydra's --config-name)")
    p.add_argument("--config-path", "--config_path", dest="config_path", default=None,
                   help="folder of --config-name (Hydra compatibility)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. forget_loss=gdpd lr=2e-4")


def resolve_config_arg(args) -> None:
    if getattr(args, "config_path", None) and args.config:
        from pathlib import Path

        args.config = str(Path(args.config_path) / args.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safeeraser", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from safeeraser.models.families import DEFAULT_FAMILY, REGISTRY

    p = sub.add_parser("make-tiny", help="build a tiny random model of a family (LLaVA-1.5 by default)")
    p.add_argument("--out", required=True)
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=sorted(REGISTRY), help="the model_type to build")
    p.add_argument("--size", default="tiny", choices=["tiny", "small"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_tiny)
    p = sub.add_parser("make-mini", help="generate the mini benchmark (SafeEraser's, or another's in its released format)")
    p.add_argument("--benchmark", default="safeeraser", choices=sorted(BENCHMARKS))
    p.add_argument("--out", default=None, help="default: dataset/mini (SafeEraser), dataset/mini-NAME (the others)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train_per_category", "--train-per-category", type=int, default=6)
    p.add_argument("--val_per_category", "--val-per-category", type=int, default=3)
    p.set_defaults(func=cmd_make_mini)
    from safeeraser.train.config import config_help

    p = sub.add_parser("finetune", help="the vanilla step: full fine-tune, then check what the model answers",
                       epilog=config_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, None)
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("forget", help="LoRA unlearning (same as forget.py)", epilog=config_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, "forget_lora.yaml")
    p.set_defaults(func=cmd_forget)
    from safeeraser.pipeline.collect import ROW_SYNTAX

    p = sub.add_parser("collect", help="the report of `run` (table, CSV, JSON, plot) from eval outputs made by "
                       "hand (eval_all.py) or by several runs")
    p.add_argument("--row", action="append", default=[], metavar=ROW_SYNTAX,
                   help="a row from eval_all.py's judged files (each with its .txt stats beside it), train "
                        "then val; repeat NAME with @SEED for a mean over seeds; NAME and NAMEpd give PD's effect")
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN",
                   help="`safeeraser run` folders (their report.json rows) or report JSON files")
    p.add_argument("--out", required=True, help="folder for report.{md,csv,json,png}")
    p.add_argument("--title", default="SafeEraser: collected results")
    p.add_argument("--stem", default="report", help="the report files' name")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the 95%% intervals")
    p.add_argument("--bootstrap-seed", "--bootstrap_seed", dest="bootstrap_seed", type=int, default=0)
    p.set_defaults(func=cmd_collect)
    # Commands with their own parsers (shared with the top-level scripts): listed here for --help,
    # dispatched in main() before this parser sees their flags.
    for name, (_, text) in PASSTHROUGH.items():
        sub.add_parser(name, help=text, add_help=False)
    p = sub.add_parser("run", help="an experiment grid: unlearn, infer, eval, specificity, report")
    p.add_argument("--config", default="mini.yaml", help="YAML under config/experiment/ or a path")
    from safeeraser.pipeline.launchers import LAUNCHERS

    p.add_argument("--launcher", choices=list(LAUNCHERS), default=None,
                   help="where the steps run (overrides the config's launcher.name): local = this process, one "
                        "step after another; ray = Ray tasks on this node or a cluster (launcher.address); "
                        "slurm = SLURM jobs through submitit. Options: launcher.KEY=VALUE overrides")
    p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                   help="print the steps (resources, outputs, done or to do) and run nothing")
    p.add_argument("--compare", default=None, metavar="REPORT",
                   help="then compare the report with this one (e.g. results/reference/mini-llava/report.json): "
                        "which rows and cells differ and by how much; exit code 1 when any does")
    p.add_argument("--tol", type=float, default=0.0, help="with --compare: numbers this close count as equal")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the experiment config")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("compare", help="two reports of `safeeraser run`, cell by cell (exit code 1 when they differ)")
    p.add_argument("reference", help="the report to reproduce, e.g. results/reference/mini-llava/report.json")
    p.add_argument("fresh", help="the report to check")
    p.add_argument("--tol", type=float, default=0.0, help="numbers this close count as equal (default: exact)")
    p.set_defaults(func=cmd_compare)
    return parser


def run(func, args) -> int:
    """Run a command; a user error (bad data, bad config) is one line on stderr and exit code 2."""
    try:
        return func(args)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _infer_main(argv):
    from safeeraser.infer.ckpt_infer import main as infer_main

    return infer_main(argv)


def _attack_main(argv):
    from safeeraser.attacks.run import main as attack_main

    return attack_main(argv)


def _eval_main(argv):
    from safeeraser.eval.command import main as eval_main

    return eval_main(argv)


def _specificity_main(argv):
    from safeeraser.specificity.command import main as spec_main

    return spec_main(argv)


def _agreement_main(argv):
    from safeeraser.eval.agreement import main as agreement_main

    return agreement_main(argv)


def _benchmark_eval_main(argv):
    from safeeraser.benchmarks.command import main as benchmark_eval_main

    return benchmark_eval_main(argv)


def _report_main(argv):
    from safeeraser.pipeline.html_report import main as report_main

    return report_main(argv)


def _bench_main(argv):
    from safeeraser.bench.command import main as bench_main

    return bench_main(argv)


PASSTHROUGH = {
    "bench": (_bench_main, "speed and memory: ours vs the reference's way (unlearning, inference, judging)"),
    "infer": (_infer_main, "a checkpoint's answers on a benchmark file (same as ckpt_infer.py)"),
    "attack": (_attack_main, "a checkpoint's answers under an attack (jailbreak prompts, changed images), scored by eval"),
    "eval": (_eval_main, "judge answers: Efficacy/Generality ASR and RR, SARR, ROUGE-L, GPT-Eval (eval_all.py)"),
    "specificity": (_specificity_main, "scores on GQA, VizWiz, SQA, VQAv2, POPE, MM-Vet, MMBench"),
    "judge-agreement": (_agreement_main, "two judges' labels on the same answers: kappa, confusion, rate gaps"),
    "report": (_report_main, "an experiment's report as one HTML page, with a browser of every run's answers"),
    "benchmark-eval": (_benchmark_eval_main, "a model's scores on another benchmark's tasks ("
                       + ", ".join(n for n in BENCHMARKS if n != "safeeraser") + "), forget quality against an oracle"),
}


def main(argv: list[str] | None = None) -> int:
    from safeeraser.numerics import passive_openmp_wait

    passive_openmp_wait()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASSTHROUGH:
        return PASSTHROUGH[argv[0]][0](argv[1:])
    parser = build_parser()
    # key=value overrides may stand on both sides of an option (`run --config x a=1 --launcher ray b=2`):
    # argparse takes the first run of positionals only, so the rest are gathered here
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or "=" not in e or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    resolve_config_arg(args)
    return run(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
