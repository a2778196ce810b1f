"""`safeeraser bench`: measure our configurations against the reference's way, in one run.

For each pair it prints ours, the reference-style value and their ratio, and writes everything to JSON:
  unlearning (gdpd, klpd)  samples/s at the same effective batch and losses, and peak memory: ours with
                           the defaults (micro-batches of batch_size, one fused forward, the LoRA adapter
                           disabled as the KL reference, our LoRA layers) against micro-batch 1, one forward
                           per view, a second loaded copy as the KL reference and PEFT's LoRA layers (with
                           torch's dropout masks). Each configuration in a fresh process.
  inference                new tokens/s and responses/s on mini val records, settings held equal: our
                           batched Generator against one HF generate call per sampled answer.
  judging                  labels/s against a local OpenAI-compatible server answering after --judge_delay:
                           our judge at --judge_concurrency against one request at a time; labels must match.
  outside share            the share of our unlearning step outside the model's forward and backward.
  attack (not by default)  the pgd attack's seconds per image (--pgd_steps steps, all of an image's
                           harmful pairs in one batch) and, on a GPU, its peak memory above the model.
Models: tiny (default, CPU), small (~14M parameters, for the klpd one-copy memory check), llava-7b-random and
qwen2.5-vl-7b-random (LLaVA-1.5-7B's and Qwen2.5-VL-7B's shapes, random weights, bf16, for a CUDA GPU; they
report tokens/s and MFU as well; --shapes tiny shrinks them for a CPU dry run of the same code).
--predict_grid SOURCE measures nothing: it predicts the paper grid's wall time on one 8-GPU node from a bench
or gpu_check JSON, or from FLOP counts at an assumed MFU (SOURCE "flops"); see safeeraser.bench.grid_cost.
On a CPU with one thread (the default there) the table also gives each CPU-bound ratio in process CPU time,
which other processes on a shared machine do not distort; targets are judged on it where it is given.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from safeeraser.bench.assets import MODELS, SHAPES
from safeeraser.data.records import load_benchmark
from safeeraser.train.config import OptimSection

TARGETS = {"train": 3.0, "infer": 20.0, "judge": 25.0, "klpd_memory": 1.10}
QUICK = dict(effective_batch=4, steps=1, warmup_steps=1, prompts=2, max_new_tokens=8, judge_items=16,
             judge_reference_items=0, judge_delay=0.05, pgd_images=1, pgd_steps=2)
SECTIONS = ("train", "infer", "judge", "attack", "localize")
# The smoke modes, whose numbers mean nothing: --quick and --shapes tiny (the GPU check's dry run) run the
# matmul probe behind compute_share this long instead of half a second (still at least 3 products), and
# --quick's localize section times 1 unlearning step after its warm-up one instead of 3.
SMOKE_MATMUL_S = 0.05
SMOKE_LOCALIZE_STEPS = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safeeraser bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", choices=list(MODELS))
    p.add_argument("--shapes", default="full", choices=list(SHAPES),
                   help="for the random 7B models: their real sizes, or every width and depth shrunk (a CPU dry run "
                        "of the same code; the numbers mean nothing)")
    p.add_argument("--predict_grid", default=None, metavar="SOURCE",
                   help="measure nothing; predict the paper grid's wall time on one 8-GPU node from a bench or "
                        "gpu_check JSON file, or from FLOP counts at an assumed MFU ('flops')")
    p.add_argument("--out", default=None, help="JSON results file (default: bench-<model>.json)")
    p.add_argument("--workdir", default=None,
                   help="where the mini benchmark and model files are built and reused (default: a temporary folder)")
    p.add_argument("--sections", default="train,infer,judge",
                   help=f"comma-separated subset of {','.join(SECTIONS)} (the outside share comes with train)")
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test; the numbers mean nothing")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--allow_cpu", "--allow-cpu", action="store_true", help="let a random 7B model run on a CPU")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for every configuration (default: 1 on a CPU, so that a shared machine's "
                        "other processes do not stall OpenMP; 0 keeps torch's default)")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("unlearning")
    g.add_argument("--methods", default="gdpd,klpd")
    g.add_argument("--ways", default="ours,reference",
                   help="which configurations of each method: ours, reference (the reference's way), or both")
    g.add_argument("--effective_batch", "--effective-batch", type=int, default=16)
    g.add_argument("--batch_size", "--batch-size", type=int, default=None,
                   help="our micro-batch (default: the training config's batch_size default)")
    g.add_argument("--steps", type=_positive, default=6, help="timed optimizer steps per configuration")
    g.add_argument("--rounds", type=_positive, default=1,
                   help="run every configuration (training and inference) this many times, ours and the "
                        "reference's way alternating which goes first; each figure is the median over the rounds "
                        "(a shared machine's speed drifts by more than the differences measured: see the README)")
    g.add_argument("--warmup_steps", "--warmup-steps", type=int, default=None,
                   help="untimed optimizer steps first (default: one epoch of the forget set, so the timed steps "
                        "are the steady state: images preprocessed, caches warm, as in epochs 2..N of a run)")
    g.add_argument("--gradient_checkpointing", "--gradient-checkpointing", action="store_true", help="for both configurations")
    g.add_argument("--peak_flops", "--peak-flops", type=float, default=989e12,
                   help="the device's peak bf16 FLOP/s for MFU (default: H100 SXM dense, 989e12)")
    g.add_argument("--profile", action="store_true",
                   help="also profile our configurations (a run each, first round): each op group's share of "
                        "the step's CPU time (matrix products, attention, data loader, ...) and the largest ops")
    g = p.add_argument_group("inference")
    g.add_argument("--prompts", type=int, default=32, help="harmful val prompts, 3 sampled answers each")
    g.add_argument("--reference_prompts", "--reference-prompts", type=int, default=0,
                   help="the reference's way on only the first N prompts (0: all)")
    g.add_argument("--max_new_tokens", "--max-new-tokens", type=int, default=128)
    g.add_argument("--infer_batch_size", "--infer-batch-size", type=int, default=32, help="our Generator's batch size (prompts)")
    g = p.add_argument_group("judging")
    g.add_argument("--judge_items", "--judge-items", type=int, default=512,
                   help="labels asked of our judge (a run of several waves: its start-up is part of the time)")
    g.add_argument("--judge_reference_items", "--judge-reference-items", type=int, default=128,
                   help="one-at-a-time on only the first N (0: all); its time per label is constant")
    g.add_argument("--judge_concurrency", "--judge_concurrency", type=int, default=32)
    g.add_argument("--judge_delay", "--judge_delay", type=float, default=0.2, help="seconds the local server waits before answering")
    g = p.add_argument_group("attack")
    g.add_argument("--pgd_images", type=_positive, default=4, help="harmful val images the pgd attack is timed on")
    g.add_argument("--pgd_steps", type=_positive, default=20, help="pgd steps per image (the attack's default: 20)")
    return p


def _apply_quick(args, argv: list[str]) -> None:
    given = {a.split("=")[0] for a in argv if a.startswith("--")}
    for key, value in QUICK.items():
        if f"--{key.replace('_', '-')}" not in given:
            setattr(args, key, value)


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _machine(device: str, threads: int) -> dict:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "device": device, "threads": threads}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
                    gpu_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda)
    return info


def our_micro_batch(args) -> int:
    return min(args.batch_size or OptimSection.batch_size, args.effective_batch)


def run_train(args, assets, threads: int) -> dict:
    from safeeraser.bench.train_bench import TrainSpec, measure_memory, measure_op_shares, run_in_subprocess

    ours_bs = our_micro_batch(args)
    if args.warmup_steps is None:
        items = sum(len(r.unsafe_pairs) for r in load_benchmark(assets.train_file, check_images=False))
        args.warmup_steps = -(-items // args.effective_batch)
    ways = {w.strip() for w in args.ways.split(",")}
    plans = (("ours", ours_bs, True, False), ("reference", 1, False, True))
    smoke = getattr(args, "quick", False) or assets.shapes == "tiny"  # (a caller's own args may lack quick)
    matmul_s = SMOKE_MATMUL_S if smoke else TrainSpec.matmul_seconds
    by_round: dict[str, list[dict]] = {}
    for rnd in range(args.rounds):
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            # alternate which way goes first: a drift in the machine's speed then weighs on both sides alike
            for way, bs, fused, copy in (plans if rnd % 2 == 0 else plans[::-1]):
                if way not in ways:
                    continue
                spec = TrainSpec(method=method, way=way, batch_size=bs, accumulation=args.effective_batch // bs,
                                 fused_forward=fused, reference_copy=copy, steps=args.steps,
                                 warmup=args.warmup_steps, assets=assets.to_dict(), threads=threads, seed=233,
                                 gradient_checkpointing=args.gradient_checkpointing, peak_flops=args.peak_flops,
                                 profile_data=(way == "ours" and rnd == 0), answer_logits_only=(way == "ours"),
                                 peft_layers=(way == "reference"), matmul_seconds=matmul_s)
                _log(f"unlearning {spec.label}{f' (round {rnd + 1} of {args.rounds})' if args.rounds > 1 else ''}: "
                     f"micro-batch {bs} x {spec.accumulation}, "
                     f"{'fused forward' if fused else 'one forward per view'}, {args.steps} timed steps")
                r = run_in_subprocess(spec)
                # see LIVE_MEMORY_ENV; on CUDA the allocator's own peak is exact. A dry run's (tiny shapes)
                # memory means nothing: it is not worth a second process.
                if assets.device == "cpu" and assets.shapes != "tiny" and rnd == 0:
                    r["peak_mb_allocator_history"] = r["peak_mb"]
                    r["peak_mb"] = measure_memory(spec, fresh=not args.quick)["peak_mb"]
                if args.profile and way == "ours" and rnd == 0:
                    r["op_shares"] = measure_op_shares(spec)
                _log(f"  {r['samples_per_s']:.2f} samples/s, peak {r['peak_mb']:.0f} MB, "
                     f"outside fwd/bwd {100 * r['outside_forward_backward_share']:.1f}%")
                by_round.setdefault(spec.label, []).append(r)
    return {label: median_result(runs) for label, runs in by_round.items()}


def median_result(runs: list[dict]) -> dict:
    """One configuration's result over several rounds: the first round's, with every number replaced by its
    median over the rounds (peak memory is measured once), and the rounds themselves under `rounds`."""
    import statistics

    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("peak_mb",):
            out[key] = statistics.median(r[key] for r in runs if key in r)  # some only in the first round
    out["rounds"] = [{k: v for k, v in r.items() if isinstance(v, (int, float))} for r in runs]
    return out


def run_infer(args, assets) -> dict:
    """The inference measurement, `args.rounds` times (the way timed first alternating), as medians."""
    from safeeraser.bench import infer_bench

    runs = []
    for rnd in range(args.rounds):
        _log(f"inference{f' (round {rnd + 1} of {args.rounds})' if args.rounds > 1 else ''}: "
             f"{args.prompts} prompts x 3 samples, {args.max_new_tokens} new tokens each")
        runs.append(infer_bench.measure_inference(
            assets, prompts=args.prompts, max_new_tokens=args.max_new_tokens, batch_size=args.infer_batch_size,
            reference_prompts=args.reference_prompts, seed=args.seed, peak_flops=args.peak_flops,
            reference_first=rnd % 2 == 1))
    return median_sides(runs)


def median_sides(runs: list[dict]) -> dict:
    """An inference measurement over several rounds: the first round's, with each side's numbers replaced by
    their medians (`median_result`), each side's rounds under its `rounds`."""
    if len(runs) == 1:
        return runs[0]
    return {**runs[0], **{side: median_result([r[side] for r in runs]) for side in ("ours", "reference")}}


def attack_rows(res: dict) -> list:
    from safeeraser.bench.report import Row

    return [Row("attack_pgd_seconds_per_image", f"pgd attack seconds per image ({res['steps']} steps)", "s/image",
                res["seconds_per_image"], float("nan"), better="lower")]


def localize_rows(res: dict) -> list:
    from safeeraser.bench.report import Row

    nan = float("nan")
    return [Row(f"localize_{m}_share_of_epoch", f"{m}'s importance pass against one unlearning epoch", "epochs",
                r["share_of_epoch"], nan, better="lower") for m, r in res.items()]


def train_rows(results: dict, device: str) -> list:
    from safeeraser.bench.report import Row

    rows = []
    methods = list(dict.fromkeys(r["method"] for r in results.values()))
    for m in methods:
        ours, ref = results.get(f"{m}/ours"), results.get(f"{m}/reference")
        if not ours:
            continue
        measured_ref = ref is not None
        nan = float("nan")  # --ways ours: no reference figures, no ratio to judge
        ref = ref or {"samples_per_s": nan, "samples_per_cpu_s": nan, "tokens_per_s": nan, "peak_mb": nan}
        cpu = {}
        if device == "cpu":
            cpu = dict(ours_cpu=ours["samples_per_cpu_s"], reference_cpu=ref["samples_per_cpu_s"])
        rows.append(Row(f"train_{m}_samples_per_s", f"unlearning {m} samples/s", "forget examples/s",
                        ours["samples_per_s"], ref["samples_per_s"],
                        target=TARGETS["train"] if measured_ref else None, **cpu))
        rows.append(Row(f"train_{m}_tokens_per_s", f"unlearning {m} training tokens/s", "tokens/s",
                        ours["tokens_per_s"], ref["tokens_per_s"]))
        mem_unit = "MB allocated on the GPU" if device == "cuda" else "MB RSS above imports"
        rows.append(Row(f"train_{m}_peak_memory_mb", f"unlearning {m} peak memory", mem_unit,
                        ours["peak_mb"], ref["peak_mb"], better="lower"))
        if "compute_share" in ours:
            # the limit on this machine: achieved model FLOP/s over a plain matmul's of the step's shapes
            rows.append(Row(f"train_{m}_compute_share", f"unlearning {m} FLOP/s / plain matmul FLOP/s",
                            "share of the machine's compute", ours["compute_share"],
                            ref.get("compute_share", nan)))
        if "mfu" in ours:
            rows.append(Row(f"train_{m}_mfu", f"unlearning {m} MFU", "fraction of peak", ours["mfu"],
                            ref.get("mfu", nan)))
    if "gdpd/ours" in results and "klpd/ours" in results:
        g, k = results["gdpd/ours"], results["klpd/ours"]
        gr, kr = results.get("gdpd/reference"), results.get("klpd/reference")
        ref_ratio = kr["peak_mb"] / gr["peak_mb"] if gr and kr else float("nan")
        rows.append(Row("train_klpd_over_gdpd_memory", "klpd / gdpd peak memory", "ratio",
                        k["peak_mb"] / g["peak_mb"], ref_ratio, better="lower", target_on="ours"))
    if "gdpd/ours" in results:
        o, r = results["gdpd/ours"], results.get("gdpd/reference", results["gdpd/ours"])
        rows.append(Row("train_outside_forward_backward_share", "unlearning step outside forward+backward (gdpd)",
                        "share of step time", o["outside_forward_backward_share"],
                        r["outside_forward_backward_share"], better="lower"))
    return rows


def infer_rows(res: dict, device: str) -> list:
    from safeeraser.bench.report import Row

    o, r = res["ours"], res["reference"]
    cpu = device == "cpu"
    rows = [Row("infer_new_tokens_per_s", "inference new tokens/s", "tokens/s", o["new_tokens_per_s"],
                r["new_tokens_per_s"], target=TARGETS["infer"],
                ours_cpu=o["new_tokens_per_cpu_s"] if cpu else None,
                reference_cpu=r["new_tokens_per_cpu_s"] if cpu else None),
            Row("infer_responses_per_s", "inference responses/s", "answers/s", o["responses_per_s"],
                r["responses_per_s"], ours_cpu=o["responses_per_cpu_s"] if cpu else None,
                reference_cpu=r["responses_per_cpu_s"] if cpu else None)]
    if "mfu" in o and "mfu" in r:
        rows.append(Row("infer_mfu", "inference MFU", "fraction of peak", o["mfu"], r["mfu"]))
    return rows


def judge_rows(res: dict) -> list:
    from safeeraser.bench.report import Row

    compared = res["reference_items"]
    return [Row("judge_labels_per_s", f"judging labels/s (concurrency {res['concurrency']})", "labels/s",
                res["ours"]["labels_per_s"], res["reference"]["labels_per_s"], target=TARGETS["judge"]),
            Row("judge_labels_agreeing", "judging labels equal to one-at-a-time's", "labels",
                compared - res["mismatches"], compared),
            Row("judge_labels_as_served", "judging labels equal to what the server answered", "labels",
                res["labels_as_served"], res["items"])]


def _target_notes(rows: list, model: str, device: str) -> None:
    for row in rows:
        if row.key == "train_klpd_over_gdpd_memory":
            # On tiny the weights are a few MB of a few hundred: activations decide, so the one-copy
            # target is judged on a model where weights dominate (--model small or larger).
            row.target = None if model == "tiny" else TARGETS["klpd_memory"]
        elif row.target is not None and (model != "tiny" or device != "cpu"):
            row.target_note = "set for tiny on a CPU"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer of at least 1, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"an integer of at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    from safeeraser.bench.assets import BenchSetupError, check_model_device, resolve_device

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.predict_grid is not None:
        from safeeraser.bench.grid_cost import main as predict_main

        return predict_main([args.predict_grid])
    if args.quick:
        _apply_quick(args, argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        print(f"error: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}",
              file=sys.stderr)
        return 2
    ways = {w.strip() for w in args.ways.split(",") if w.strip()}
    if not ways or ways - {"ours", "reference"}:
        print(f"error: --ways '{args.ways}': choose ours, reference or both (comma-separated)", file=sys.stderr)
        return 2
    if args.effective_batch < 1 or args.effective_batch % our_micro_batch(args):
        print(f"error: --effective_batch {args.effective_batch} is not a multiple of our micro-batch "
              f"{our_micro_batch(args)} (--batch_size)", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        device = resolve_device(args.device)
        check_model_device(args.model, device, args.allow_cpu, args.shapes)
    except BenchSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch

    threads = args.threads if args.threads is not None else (1 if device == "cpu" else 0)
    previous_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return _run(args, argv, sections, device, threads)
    finally:
        torch.set_num_threads(previous_threads)  # leave a caller's process (e.g. a test session) as it was


def _run(args, argv: list[str], sections: set[str], device: str, threads: int) -> int:
    import torch

    from safeeraser.bench.assets import BenchSetupError, prepare_assets
    from safeeraser.bench.report import format_markdown, format_table

    out_path = Path(args.out or f"bench-{args.model}.json")
    started = time.time()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="safeeraser-bench-")
    workdir = args.workdir or tmp.name
    try:
        _log(f"preparing the mini benchmark and the {args.model} model under {workdir}")
        assets = prepare_assets(args.model, workdir, device, seed=args.seed, shapes=args.shapes)
        details: dict = {}
        rows = []
        if "train" in sections:
            details["train"] = run_train(args, assets, threads)
            rows += train_rows(details["train"], device)
        if "infer" in sections:
            details["infer"] = run_infer(args, assets)
            rows += infer_rows(details["infer"], device)
        if "judge" in sections:
            from safeeraser.bench.judge_bench import measure_judging

            _log(f"judging: {args.judge_items} items, server delay {args.judge_delay}s")
            details["judge"] = measure_judging(assets.val_file, args.judge_items, args.judge_concurrency,
                                               args.judge_delay, reference_items=args.judge_reference_items)
            rows += judge_rows(details["judge"])
        if "attack" in sections:
            from safeeraser.bench.attack_bench import measure_pgd

            _log(f"attack: pgd on {args.pgd_images} image(s), {args.pgd_steps} steps each")
            details["attack"] = measure_pgd(assets, args.pgd_images, args.pgd_steps, seed=args.seed)
            rows += attack_rows(details["attack"])
        if "localize" in sections:
            from safeeraser.bench.localize_bench import measure_localization

            _log("localize: the importance passes of mmunlearner and manu against an unlearning epoch")
            details["localize"] = measure_localization(
                assets, seed=args.seed, **({"steps": SMOKE_LOCALIZE_STEPS} if args.quick else {}))
            rows += localize_rows(details["localize"])
    except BenchSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a configuration's process failed (e.g. out of memory): say which, stop
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    _target_notes(rows, args.model, device)
    if device != "cpu" or torch.get_num_threads() != 1:
        for row in rows:  # CPU time equals a dedicated core's wall time only for one thread on a CPU
            row.ours_cpu = row.reference_cpu = None
    meta = {
        "command": "safeeraser bench " + " ".join(shlex.quote(a) for a in argv),
        "model": args.model, "shapes": args.shapes, "quick": args.quick,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)), "seconds": time.time() - started,
        "machine": _machine(device, torch.get_num_threads()), "load_average_before": load_before,
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "effective_batch": args.effective_batch, "sections": sorted(sections),
    }
    payload = {"meta": meta, "rows": [r.to_dict() for r in rows], "table_markdown": format_markdown(rows),
               "details": details}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(payload, indent=2))
    m = meta["machine"]
    print(f"safeeraser bench: model {args.model} on {device} ({m['cpu'] if device == 'cpu' else m.get('gpu')}), "
          f"{m['threads']} torch thread(s), load average {load_before[0] if load_before else 'n/a'}"
          f"{' [--quick: numbers are not meaningful]' if args.quick else ''}")
    print(format_table(rows))
    _print_notes(details)
    print(f"wrote {out_path} ({meta['seconds']:.0f} s)")
    return 0


def round_ratios(train: dict, method: str, key: str = "samples_per_cpu_s") -> list[float]:
    """Ours over the reference's way, round by round (empty for a single round)."""
    o, r = train.get(f"{method}/ours", {}), train.get(f"{method}/reference", {})
    return [a[key] / b[key] for a, b in zip(o.get("rounds", []), r.get("rounds", []))
            if b.get(key) and a.get(key) is not None]


def infer_round_ratios(infer: dict, key: str = "new_tokens_per_cpu_s") -> list[float]:
    """Our inference rate over the reference way's, round by round (empty for a single round)."""
    o, r = infer.get("ours", {}), infer.get("reference", {})
    return [a[key] / b[key] for a, b in zip(o.get("rounds", []), r.get("rounds", [])) if b.get(key)]


def _print_notes(details: dict) -> None:
    t = details.get("train", {})
    for method in dict.fromkeys(label.split("/")[0] for label in t):
        for key, what in (("samples_per_cpu_s", "CPU time"), ("samples_per_s", "wall clock")):
            ratios = round_ratios(t, method, key)
            if ratios and t[f"{method}/ours"].get(key) is not None:
                print(f"unlearning {method}, ours / reference way per round ({what}): "
                      + ", ".join(f"{x:.2f}x" for x in ratios))
    o = t.get("gdpd/ours")
    if o:
        share = o["share"]
        parts = ", ".join(f"{k} {100 * v:.1f}%" for k, v in share.items())
        print(f"our gdpd step: {parts}")
        if "data_costs_ms" in o:
            d = o["data_costs_ms"]
            print(f"input pipeline per item: image preprocessing {d['image_uncached']:.2f} ms uncached, "
                  f"{d['image_cached']:.3f} ms cached; encoding an item {d['item_encode']:.2f} ms; "
                  f"collating a micro-batch {d['collate_batch']:.2f} ms")
    for label, r in t.items():
        if "op_shares" in r:
            groups = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["op_shares"]["groups"].items())
            ops = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["op_shares"]["largest_ops"].items())
            print(f"{label} step, share of its self CPU time (torch.profiler): {groups}; largest ops: {ops}")
    j = details.get("judge")
    if j:
        print(f"judging: ours {j['items']} labels, one-at-a-time {j['reference_items']}; lost {j['lost']}, "
              f"duplicated {j['duplicated']}, differing from one-at-a-time {j['mismatches']}, "
              f"every prompt served exactly once: {j['all_served_once']}")
    i = details.get("infer")
    if i and infer_round_ratios(i):
        print("inference, ours / reference way per round (CPU time): "
              + ", ".join(f"{x:.2f}x" for x in infer_round_ratios(i)))
    if i:
        print(f"inference: {i['ours']['responses']:g} answers (ours) / {i['reference']['responses']:g} (reference), "
              f"{i['max_new_tokens']} new tokens each, temperature {i['temperature']}, top-p {i['top_p']}")
