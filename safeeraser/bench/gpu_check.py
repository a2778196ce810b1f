"""The one-shot GPU check's Python half (`scripts/gpu_check.sh` runs the stages, this merges them).

    python -m safeeraser.bench.gpu_check vllm  --model M --workdir W --device D --shapes S --out F
    python -m safeeraser.bench.gpu_check merge --out OUT [--dry] --stage NAME RC SECONDS FILE ...

`vllm` measures vLLM on a random model already prepared under the work folder (or records that vLLM
is not importable). `merge` reads each stage's JSON (`safeeraser bench` outputs and the vLLM probe),
keeps the figures the issue asks for, judges the targets, predicts the paper grid's wall time from
them (`grid_cost`) and writes ONE JSON. The dry run (`--dry`: tiny shapes on the CPU) writes the same
keys through the same code; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from safeeraser.bench import grid_cost
from safeeraser.bench.assets import RANDOM_MODELS, prepare_assets
from safeeraser.bench.infer_bench import measure_vllm
from safeeraser.io import atomic_write_json

SCHEMA = "safeeraser-gpu-check/1"
MODELS = tuple(RANDOM_MODELS)  # every random 7B bench model
METHODS = ("gdpd", "klpd")
TARGETS = {"train_mfu": 0.40, "infer_ratio": 10.0, "klpd_memory": 1.10}

# Dense bf16 peak FLOP/s by GPU name (first match wins; the vendors' data sheets, without sparsity).
PEAK_BF16 = (("H200", 989e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H100", 989e12),
             ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12))
# The dry run's CPU "peak", so that its MFU is a finite number: nominal, not a property of the machine.
DRY_PEAK = 1e12

# Every figure a complete check has (key paths under each model, then at the top): each must be a
# finite number; the CI test checks them on the dry run.
TRAIN_KEYS = ("tokens_per_s", "samples_per_s", "step_s", "mfu", "peak_mb", "model_flops_per_s")
MODEL_KEYS = tuple([("train", m, k) for m in METHODS for k in TRAIN_KEYS]
                   + [("train", "klpd_over_gdpd_peak"), ("infer", "ours_new_tokens_per_s"),
                      ("infer", "reference_new_tokens_per_s"), ("infer", "ratio"), ("infer", "ours_responses_per_s")])
TOP_KEYS = (("grid_prediction", "total_h"), ("grid_prediction", "training", "wall_h"),
            ("grid_prediction", "evaluation", "wall_h"), ("grid_prediction", "judging", "h"))


def _pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def peak_flops(gpu: str | None, dry: bool) -> tuple[float, str]:
    if dry or not gpu:
        return DRY_PEAK, "nominal 1e12 (dry run on a CPU: MFU means nothing)"
    for name, peak in PEAK_BF16:
        if name.lower() in gpu.lower():
            return peak, f"{name} dense bf16 peak {peak / 1e12:.0f} TFLOP/s"
    return float("nan"), f"unknown GPU '{gpu}': no peak, no MFU (add it to PEAK_BF16)"


def get(d: dict, path: str | tuple):
    """The value at a key path (a tuple, or a dotted string whose keys hold no dot), None if absent."""
    for part in (path.split(".") if isinstance(path, str) else path):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def missing_or_not_finite(doc: dict) -> list[str]:
    """The figures a complete check must have that are absent or not finite numbers."""
    paths = [("models", m, *k) for m in MODELS for k in MODEL_KEYS] + list(TOP_KEYS)
    bad = []
    for p in paths:
        v = get(doc, p)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            bad.append("/".join(p))
    for m in MODELS:
        if not isinstance(get(doc, ("models", m, "infer", "vllm", "importable")), bool):
            bad.append(f"models/{m}/infer/vllm/importable")
    return bad


def summarize_bench(bench: dict, peak: float) -> dict:
    """One model's figures from its `safeeraser bench` JSON."""
    details = bench.get("details", {})
    out: dict = {"command": bench["meta"]["command"], "shapes": bench["meta"].get("shapes")}
    train = details.get("train", {})
    if train:
        out["train"] = {}
        for m in METHODS:
            r = train.get(f"{m}/ours")
            if not r:
                continue
            out["train"][m] = {
                "tokens_per_s": r["tokens_per_s"], "samples_per_s": r["samples_per_s"], "step_s": r["step_s_median"],
                # MFU from the step's model FLOPs against this GPU's peak (the bench's own assumes an H100 SXM)
                "mfu": r["model_flops_per_s"] / peak, "model_flops_per_s": r["model_flops_per_s"],
                "peak_mb": r["peak_mb"], "effective_batch": r["effective_batch"], "micro_batch": r["batch_size"],
                "kl_reference": r["kl_reference"], "trainable_params": r.get("trainable_params"),
                "matmul_params": r.get("matmul_params"), "steps_timed": r.get("steps_timed"),
                "tokens_per_step": r["tokens_per_s"] * r["step_s_median"],
            }
        if all(m in out["train"] for m in METHODS):
            out["train"]["klpd_over_gdpd_peak"] = out["train"]["klpd"]["peak_mb"] / out["train"]["gdpd"]["peak_mb"]
    inf = details.get("infer")
    if inf:
        o, r = inf["ours"], inf["reference"]
        out["infer"] = {
            "attention": inf.get("attention"), "ours_new_tokens_per_s": o["new_tokens_per_s"],
            "reference_new_tokens_per_s": r["new_tokens_per_s"], "ratio": o["new_tokens_per_s"] / r["new_tokens_per_s"],
            "ours_responses_per_s": o["responses_per_s"], "max_new_tokens": inf["max_new_tokens"],
            "prompts": inf["prompts"], "reference_prompts": inf["reference_prompts"],
            "mean_prompt_tokens": inf["mean_prompt_tokens"], "batch_size": inf["batch_size"],
        }
    j = details.get("judge")
    if j:
        out["judge"] = {"labels_per_s": j["ours"]["labels_per_s"],
                        "reference_labels_per_s": j["reference"]["labels_per_s"],
                        "concurrency": j["concurrency"], "server_delay_s": j["server_delay_s"],
                        "labels_match": j["labels_match"], "items": j["items"]}
    return out


def judge_targets(doc: dict) -> list[dict]:
    rows = []

    def add(name, value, bound, target, higher=True):
        ok = None if value is None or not math.isfinite(value) else (value >= target if higher else value <= target)
        rows.append({"name": name, "value": value, "target": f"{bound} {target:g}", "met": ok})

    for model in MODELS:
        m = doc["models"].get(model, {})
        for method in METHODS:
            add(f"{model} {method} step MFU", get(m, ("train", method, "mfu")), ">=", TARGETS["train_mfu"])
        add(f"{model} inference new tokens/s, ours / reference way", get(m, "infer.ratio"), ">=",
            TARGETS["infer_ratio"])
        add(f"{model} klpd / gdpd peak memory", get(m, "train.klpd_over_gdpd_peak"), "<=", TARGETS["klpd_memory"],
            higher=False)
    return rows


def _num(x) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def format_summary(doc: dict) -> str:
    mach = doc["machine"]
    lines = [f"GPU check{' (DRY RUN: tiny shapes on the CPU; the numbers mean nothing)' if doc['dry'] else ''}: "
             f"{mach.get('gpu') or mach.get('cpu')}, torch {mach.get('torch')}, "
             f"transformers {mach.get('transformers')}, "
             f"attention {mach.get('attention')}, vLLM {mach.get('vllm') or 'not importable'}"]
    for model in MODELS:
        m = doc["models"].get(model, {})
        lines.append(f"{model}: {m.get('status', 'not run')}")
        for method in METHODS:
            t = get(m, ("train", method)) or {}
            if t:
                lines.append(f"  unlearning {method}: {_num(t['tokens_per_s'])} tokens/s, step {_num(t['step_s'])} s "
                             f"(effective batch {t['effective_batch']}, micro-batch {t['micro_batch']}), "
                             f"MFU {100 * t['mfu']:.1f}%, peak {_num(t['peak_mb'])} MB")
        i = m.get("infer") or {}
        if i:
            v = i.get("vllm") or {}
            vtext = (f"vLLM {_num(v.get('new_tokens_per_s'))}" if v.get("importable")
                     else f"vLLM {v.get('reason', 'not measured')}")
            lines.append(f"  inference new tokens/s: ours {_num(i['ours_new_tokens_per_s'])}, reference way "
                         f"{_num(i['reference_new_tokens_per_s'])} ({i['ratio']:.1f}x); {vtext}")
    lines.append("targets:")
    for t in doc["targets"]:
        met = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {t['name']}: {_num(t['value'])} (target {t['target']}): {met}")
    g = doc.get("grid_prediction")
    if g:
        lines.append(f"paper grid on one {g['node']['gpus']}-GPU node, predicted from these figures: "
                     f"{g['total_h']:.1f} h (dominated by {g['dominant']})")
    return "\n".join(lines)


def merge(stages: list[tuple[str, int, float, str]], dry: bool, started: float | None = None) -> dict:
    """The check's JSON from its stages: (name, exit code, seconds, output file)."""
    benches, vllm, stage_rows = {}, {}, []
    for name, rc, seconds, path in stages:
        data, p = None, Path(path)
        if rc == 0 and p.is_file():
            try:
                data = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                data = None
        status = ("ok" if data is not None else f"timed out after {seconds:.0f} s" if rc in (124, 137)
                  else f"failed (exit {rc})" if rc else f"no readable output ({path})")
        stage_rows.append({"name": name, "exit_code": rc, "seconds": seconds, "status": status})
        if name.startswith("vllm:"):
            vllm[name.split(":", 1)[1]] = data or {"importable": importlib.util.find_spec("vllm") is not None,
                                                    "reason": f"the vLLM stage {status}: see its log"}
        elif data is not None:
            benches[name] = data
    meta = next((b["meta"] for b in benches.values()), {})
    machine = dict(meta.get("machine", {}))
    machine.update({
        "python": machine.get("python", platform.python_version()),
        "torch": machine.get("torch", _pkg("torch")), "transformers": machine.get("transformers", _pkg("transformers")),
        "peft": _pkg("peft"), "flash_attn_importable": importlib.util.find_spec("flash_attn") is not None,
        "flash_attn": _pkg("flash-attn") or _pkg("flash_attn"), "vllm": _pkg("vllm"),
    })
    peak, peak_note = peak_flops(machine.get("gpu"), dry)
    machine.update(peak_flops=peak, peak_flops_source=peak_note)
    models: dict = {}
    for model in MODELS:
        status = next((s["status"] for s in stage_rows if s["name"] == model), "not run")
        entry = {"status": status}
        if model in benches:
            entry.update(summarize_bench(benches[model], peak))
        if "infer" in entry:
            entry["infer"]["vllm"] = vllm.get(model, {
                "importable": importlib.util.find_spec("vllm") is not None,
                "reason": "not measured for this model (the check runs vLLM on LLaVA only, for time)"})
        models[model] = entry
    attention = next((get(m, "infer.attention") for m in models.values() if get(m, "infer.attention")), None)
    machine["attention"] = attention
    judge = next((m.pop("judge") for m in models.values() if "judge" in m), None)
    doc = {"schema": SCHEMA, "dry": dry, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
           if started else None, "seconds": time.time() - started if started else None,
           "machine": machine, "stages": stage_rows, "models": models}
    if judge:
        doc["judge"] = judge
    doc["targets"] = judge_targets(doc)
    try:
        costs = grid_cost.costs_from_json(doc)
    except grid_cost.CostError as exc:
        doc["grid_prediction"] = {"error": str(exc)}
    else:
        doc["grid_prediction"] = grid_cost.predict(costs, grid_cost.Setting())
    doc["missing"] = missing_or_not_finite(doc)
    doc["complete"] = not doc["missing"]
    return doc


def cmd_vllm(args) -> int:
    if importlib.util.find_spec("vllm") is None:  # before any heavy import: the dry run's common case
        result = {"importable": False, "reason": "vllm is not importable in this environment"}
    else:
        assets = prepare_assets(args.model, args.workdir, args.device, shapes=args.shapes)
        result = measure_vllm(assets, prompts=args.prompts, max_new_tokens=args.max_new_tokens,
                              max_model_len=4096, gpu_memory_utilization=0.85)

    atomic_write_json(args.out, result)
    return 0


def cmd_merge(args) -> int:
    stages = [(name, int(rc), float(sec), path) for name, rc, sec, path in args.stage]
    doc = merge(stages, args.dry, started=args.started)
    atomic_write_json(args.out, doc)
    print(format_summary(doc))
    if doc["missing"]:
        print(f"incomplete: {len(doc['missing'])} figure(s) missing, e.g. {', '.join(doc['missing'][:4])}",
              file=sys.stderr)
    print(f"wrote {args.out}")
    return 0 if doc["complete"] else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m safeeraser.bench.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vllm", help="vLLM new tokens/s on a prepared random model (or: not importable)")
    v.add_argument("--model", required=True, choices=MODELS)
    v.add_argument("--workdir", required=True)
    v.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    v.add_argument("--shapes", default="full", choices=["full", "tiny"])
    v.add_argument("--prompts", type=int, default=32)
    v.add_argument("--max_new_tokens", type=int, default=128)
    v.add_argument("--out", required=True)
    m = sub.add_parser("merge", help="merge the stages' JSON into the check's one JSON")
    m.add_argument("--out", required=True)
    m.add_argument("--dry", action="store_true")
    m.add_argument("--started", type=float, default=None, help="the check's start (seconds since the epoch)")
    m.add_argument("--stage", nargs=4, action="append", default=[], metavar=("NAME", "RC", "SECONDS", "FILE"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"vllm": cmd_vllm, "merge": cmd_merge}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
