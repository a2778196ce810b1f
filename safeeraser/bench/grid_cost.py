"""The paper grid's cost on paper: its wall time on one 8-GPU node, predicted from per-unit costs.

    python -m safeeraser.bench.grid_cost SOURCE [--train_file F --val_file F] [--answer_tokens N] ...
    safeeraser bench --predict_grid SOURCE

SOURCE is a `gpu_check` JSON or a `safeeraser bench` JSON (measured costs: the unlearning step's
tokens/s for gdpd and klpd, inference new tokens/s, judge labels/s), or `flops`: LLaVA-1.5-7B's FLOP
counts at an assumed MFU. The grid is the paper's: 8 methods (ga gd kl po gapd gdpd klpd popd) trained
with LoRA for 10 epochs at an effective batch of 16, then for each of them and the vanilla model:
sampled answers on the train and val splits (3 per harmful question, one on the SD image, the four
UnharmPairs), their judging, and the 7 specificity benchmarks. Everything the prediction assumes is
listed in its output (`assumptions`): data sizes the SPEC does not give, answer lengths, how the
GPUs are shared. Costs scale linearly in tokens (attention's quadratic term is left out).
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from safeeraser.data.records import load_benchmark
from safeeraser.io import atomic_write_json
from safeeraser.train.methods import parse_method

PAPER_METHODS = ("ga", "gd", "kl", "po", "gapd", "gdpd", "klpd", "popd")
# Specificity: questions per benchmark (the public evaluation splits as LLaVA-1.5's scripts and this
# toolkit read them; MMBench's dev questions are asked once per option: at most 4 rotations each),
# text tokens of a prompt besides the image, and new tokens of an answer. ASSUMED, not read from files.
SPECIFICITY = {
    "gqa": (12_578, 30, 3), "vizwiz": (4_319, 40, 3), "sqa": (2_017, 120, 2), "vqav2": (214_354, 30, 3),
    "pope": (8_910, 30, 2), "mmvet": (218, 30, 200), "mmbench": (4_329 * 4, 80, 2),
}
JUDGE_LABELS_PER_PAIR = 7  # ASR and RR on each of 3 samples, RR on the SD answer (eval/evaluate.py)
# LLaVA-1.5-7B, counted with assets.linear_params on the meta-device build of the llava family's bench_config.
LLAVA_7B = {"text": 6_607_339_520, "vision": 301_989_888, "projector": 20_971_520, "layers": 32, "hidden": 4096,
            # LoRA r 32 on the 7 projections of 32 layers (79.95 M) and the tuned projector (20.98 M)
            "trainable": 100_933_632}
H100_PEAK = 989e12  # dense bf16 FLOP/s of an H100 SXM (H200: the same)


def method_views(name: str) -> tuple[int, int]:
    """(views the method trains on, views its frozen reference reads), from the method registry: a view is
    one sequence per forget example."""

    method = parse_method(name)
    return len(method.views()), len(method.reference_views())


class CostError(ValueError):
    """A source that cannot give the per-unit costs (file, key)."""


@dataclass
class Setting:
    """The paper's grid and what the prediction assumes about its data and node."""
    methods: tuple = PAPER_METHODS
    vanilla: bool = True  # evaluated like the others, not trained
    epochs: int = 10
    effective_batch: int = 16
    samples: int = 3  # sampled answers per harmful question
    answer_tokens: int = 512  # mean new tokens per answer: the cap, an upper bound
    # The SPEC gives 3,000 images and 28.8K VQA pairs, not the split: 3,000 records of k harmful
    # questions, k SD (PD) answers and 4 UnharmPairs make 28.8K pairs for k = 2.8; split 80/20.
    train_records: int = 2400
    val_records: int = 600
    pairs_per_record: float = 2.8
    unharm_per_record: int = 4
    image_tokens: int = 576  # LLaVA-1.5
    view_text_tokens: int = 180  # prompt (~60) and answer (~120) text tokens of one training view
    prompt_text_tokens: int = 60  # text tokens of an inference prompt
    specificity: dict = field(default_factory=lambda: dict(SPECIFICITY))
    gpus: int = 8
    gpus_per_run: int = 1  # a LoRA run of a 7B model fits one 80 GB GPU
    judge_latency_s: float = 2.0  # an API judge's seconds per label (GPT-4o class)
    judge_concurrency: int = 32
    files: str = "assumed sizes"  # where train/val sizes came from

    @property
    def view_tokens(self) -> int:
        return self.image_tokens + self.view_text_tokens

    @property
    def prompt_tokens(self) -> int:
        return self.image_tokens + self.prompt_text_tokens

    def forget_examples(self) -> int:
        return round(self.train_records * self.pairs_per_record)


@dataclass
class Costs:
    """Per-unit costs on one GPU."""
    source: str
    trained_token_s: float  # a training view's token through forward and backward, at the effective batch
    reference_token_s: float  # a token through the frozen reference's forward (kl, klpd)
    new_token_s: float  # a sampled answer token, batched (its prompt's share included)
    prefill_token_s: float  # a prompt token of a short-answer question (specificity)
    judge_labels_per_s: float
    peak_mb: float | None = None
    notes: list = field(default_factory=list)


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def costs_from_model_entry(entry: dict, judge: dict | None, setting: Setting, source: str) -> Costs:
    """Costs from one model's gpu_check figures (`gpu_check.summarize_bench`)."""
    g, k = _get(entry, "train", "gdpd"), _get(entry, "train", "klpd")
    inf = entry.get("infer")
    if not g or not inf:
        raise CostError(f"{source}: needs train.gdpd and infer figures (got {', '.join(entry) or 'none'})")
    notes = [f"unlearning step: gdpd {g['tokens_per_s']:,.0f} training tokens/s at effective batch "
             f"{g['effective_batch']} (measured)"]
    trained = 1.0 / g["tokens_per_s"]
    reference = trained / 2  # no klpd figure: a frozen forward is about half a trained token
    if k:
        # klpd trains the same 3 views as gdpd and adds a frozen forward over one of them (retain)
        reference = max(0.0, 3 * (1.0 / k["tokens_per_s"] - trained))
        notes.append(f"frozen reference forward per token from klpd - gdpd ({k['tokens_per_s']:,.0f} tokens/s, "
                     "measured), the 3 views assumed of equal length")
    else:
        notes.append("frozen reference forward per token: half a trained token (ASSUMED: no klpd figure)")
    notes.append(f"inference: {inf['ours_new_tokens_per_s']:,.0f} new tokens/s, our engine, {inf['prompts']} "
                 f"prompts x 3 samples of {inf['max_new_tokens']} tokens (measured; longer answers assumed as fast)")
    if judge:
        rate = judge["labels_per_s"] * judge["server_delay_s"] / setting.judge_latency_s
        notes.append(f"judging: {judge['labels_per_s']:.1f} labels/s measured against a server answering in "
                     f"{judge['server_delay_s']} s, scaled to {setting.judge_latency_s} s per label (ASSUMED)")
    else:
        rate = setting.judge_concurrency / setting.judge_latency_s
        notes.append(f"judging: concurrency {setting.judge_concurrency} / {setting.judge_latency_s} s per label "
                     "(ASSUMED: no judge figure)")
    notes.append("prompt tokens (specificity) at half a trained token's time: a forward at the step's "
                 "efficiency (ASSUMED)")
    peak = max(x["peak_mb"] for x in (g, k) if x)
    return Costs(source=source, trained_token_s=trained, reference_token_s=reference,
                 new_token_s=1.0 / inf["ours_new_tokens_per_s"], prefill_token_s=trained / 2,
                 judge_labels_per_s=rate, peak_mb=peak, notes=notes)


def costs_from_json(doc: dict, setting: Setting | None = None, source: str = "measured") -> Costs:
    """Costs from a gpu_check JSON (its LLaVA figures: the paper's model) or a `safeeraser bench` JSON."""
    setting = setting or Setting()
    if "models" in doc:
        entry = doc["models"].get("llava-7b-random") or {}
        judge = doc.get("judge")
        dry = " (DRY RUN: tiny shapes on a CPU, a demonstration of the method only)" if doc.get("dry") else ""
        return costs_from_model_entry(entry, judge, setting, f"{source}: gpu_check{dry}")
    if "details" in doc and "meta" in doc:
        from safeeraser.bench.gpu_check import summarize_bench  # deferred: bench.gpu_check imports this module

        entry = summarize_bench(doc, peak=float("nan"))
        m = doc["meta"]
        what = f"{source}: safeeraser bench --model {m.get('model')} on {m.get('machine', {}).get('device')}"
        return costs_from_model_entry(entry, entry.get("judge"), setting, what)
    raise CostError(f"{source}: neither a gpu_check JSON (key 'models') nor a bench JSON (keys 'meta', 'details')")


def costs_from_flops(setting: Setting, train_mfu: float = 0.40, infer_mfu: float = 0.10,
                     peak: float = H100_PEAK, shape: dict | None = None) -> Costs:
    """Costs from LLaVA-1.5-7B's FLOP counts at ASSUMED MFUs (nothing measured). Per token of a sequence
    of n tokens: a forward is 2 FLOPs per matmul weight plus attention (4·layers·hidden·n), the image's
    vision tower and projector spread over the sequence; training adds a backward to the layers' inputs
    (as much again) and weight gradients for the trainable matmuls (2 per trainable weight)."""
    s = shape or LLAVA_7B
    attn = 4 * s["layers"] * s["hidden"]

    def text(n: int) -> float:
        return 2 * s["text"] + attn * n

    def vision(n: int) -> float:  # the image's frozen tower and projector, per token of its sequence
        return 2 * (s["vision"] + s["projector"]) * setting.image_tokens / n

    def forward(n: int) -> float:
        return text(n) + vision(n)

    n_train, n_prompt = setting.view_tokens, setting.prompt_tokens
    trained = 2 * text(n_train) + vision(n_train) + 2 * s["trainable"]
    # a new token attends to its prompt and half its answer on average; its prompt's prefill is shared by
    # the samples of a request (counted per token of the answer)
    ctx = n_prompt + setting.answer_tokens / 2
    new = 2 * s["text"] + attn * ctx + forward(n_prompt) * n_prompt / (setting.samples * setting.answer_tokens)
    notes = [f"FLOP counts of LLaVA-1.5-7B ({s['text'] / 1e9:.2f} B language-model matmul weights), "
             f"nothing measured",
             f"training and prompt forwards at {100 * train_mfu:.0f}% MFU, sampled decoding at "
             f"{100 * infer_mfu:.0f}% MFU, of {peak / 1e12:.0f} TFLOP/s (ASSUMED)",
             f"judging: concurrency {setting.judge_concurrency} / {setting.judge_latency_s} s per label (ASSUMED)"]
    return Costs(source=f"FLOP counts at assumed MFU (train {train_mfu:.0%}, decode {infer_mfu:.0%})",
                 trained_token_s=trained / (train_mfu * peak),
                 reference_token_s=forward(n_train) / (train_mfu * peak),
                 new_token_s=new / (infer_mfu * peak), prefill_token_s=forward(n_prompt) / (train_mfu * peak),
                 judge_labels_per_s=setting.judge_concurrency / setting.judge_latency_s, notes=notes)


def lpt(durations: list[float], machines: int) -> float:
    """Makespan of independent jobs on identical machines, longest first to the least loaded one."""
    loads = [0.0] * max(1, machines)
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + d)
    return max(loads)


def predict(costs: Costs, setting: Setting) -> dict:
    s = setting
    eb = s.effective_batch
    steps = math.ceil(s.forget_examples() / eb) * s.epochs
    per_method = {}
    for m in s.methods:
        trained_views, ref_views = method_views(m)
        step = eb * s.view_tokens * (trained_views * costs.trained_token_s + ref_views * costs.reference_token_s)
        per_method[m] = steps * step / s.gpus_per_run  # data parallel within a run, assumed linear
    slots = max(1, s.gpus // s.gpus_per_run)
    train_wall = lpt(list(per_method.values()), slots)

    models = len(s.methods) + (1 if s.vanilla else 0)
    eval_jobs: dict[str, list[float]] = {"inference": [], "specificity": []}
    labels = 0
    for _ in range(models):
        for records in (s.train_records, s.val_records):
            answers = records * (s.pairs_per_record * (s.samples + 1) + s.unharm_per_record)
            eval_jobs["inference"].append(answers * s.answer_tokens * costs.new_token_s)
            labels += records * (s.pairs_per_record * JUDGE_LABELS_PER_PAIR + s.unharm_per_record)
        for name, (questions, text_tokens, answer_tokens) in s.specificity.items():
            prompt = s.image_tokens + text_tokens
            per_question = prompt * costs.prefill_token_s + answer_tokens * costs.new_token_s
            eval_jobs["specificity"].append(questions * per_question)
            if name == "mmvet":
                labels += questions  # graded by a judge too
    all_jobs = eval_jobs["inference"] + eval_jobs["specificity"]
    eval_wall = lpt(all_jobs, s.gpus)
    judge_s = labels / costs.judge_labels_per_s
    total = train_wall + max(eval_wall, judge_s)
    parts = {"training": train_wall, "evaluation on the GPUs": eval_wall if eval_wall >= judge_s else 0.0,
             "judging": judge_s if judge_s > eval_wall else 0.0}
    gpu_h = {k: sum(v) / 3600 for k, v in eval_jobs.items()}
    dominant = max(parts, key=parts.get)
    if dominant == "evaluation on the GPUs":
        dominant += f" ({max(gpu_h, key=gpu_h.get)}: {max(gpu_h.values()):.1f} of {sum(gpu_h.values()):.1f} GPU-h)"
    h = 1 / 3600
    assumptions = [
        f"node: {s.gpus} GPUs; each training run on {s.gpus_per_run} GPU(s), {slots} runs at a time "
        "(longest first to the first free GPUs)",
        "then every evaluation job (one per model and split for inference, one per model and benchmark for "
        f"specificity: {len(all_jobs)} jobs) on the first free GPU, longest first",
        "judging (an API, off the GPUs) runs while the GPUs evaluate: it adds only where it is longer",
        f"data: {s.train_records:,} train / {s.val_records:,} val records, {s.pairs_per_record} harmful "
        f"questions and {s.unharm_per_record} UnharmPairs each ({s.files}); forget set {s.forget_examples():,} "
        f"examples, {steps:,} optimizer steps per run ({s.epochs} epochs at effective batch {eb})",
        f"tokens: a training view {s.view_tokens} ({s.image_tokens} image + {s.view_text_tokens} text), an "
        f"inference prompt {s.prompt_tokens}; every answer {s.answer_tokens} new tokens (the cap: an upper bound)",
        f"specificity questions per model: {sum(q for q, _, _ in s.specificity.values()):,} "
        f"({', '.join(f'{k} {v[0]:,}' for k, v in s.specificity.items())}; public split sizes, ASSUMED)",
        f"models evaluated: {len(s.methods)} unlearned + {'the vanilla model' if s.vanilla else 'no vanilla'}",
        *costs.notes,
    ]
    if costs.peak_mb:
        assumptions.append(f"a run's peak memory: {costs.peak_mb / 1024:.1f} GiB measured (the 1-GPU-per-run "
                           "assumption needs it to fit one GPU)")
    return {
        "source": costs.source, "node": {"gpus": s.gpus, "gpus_per_run": s.gpus_per_run},
        "per_unit": {k: v for k, v in asdict(costs).items() if k not in ("notes", "source")},
        "training": {"steps_per_run": steps, "per_method_h": {m: v * h for m, v in per_method.items()},
                     "wall_h": train_wall * h},
        "evaluation": {"gpu_h": gpu_h, "jobs": len(all_jobs), "wall_h": eval_wall * h},
        "judging": {"labels": labels, "labels_per_s": costs.judge_labels_per_s, "h": judge_s * h},
        "total_h": total * h, "dominant": dominant, "assumptions": assumptions,
    }


def format_prediction(p: dict) -> str:
    t, e, j = p["training"], p["evaluation"], p["judging"]
    lines = [f"paper grid on one {p['node']['gpus']}-GPU node: {p['total_h']:.1f} h predicted "
             f"(dominated by {p['dominant']})", f"source: {p['source']}",
             f"  training     {t['wall_h']:6.1f} h wall ({t['steps_per_run']:,} steps per run; per run: "
             + ", ".join(f"{m} {v:.1f} h" for m, v in t["per_method_h"].items()) + ")",
             f"  evaluation   {e['wall_h']:6.1f} h wall ({e['jobs']} jobs; GPU-hours: "
             + ", ".join(f"{k} {v:.1f}" for k, v in e["gpu_h"].items()) + ")",
             f"  judging      {j['h']:6.1f} h ({j['labels']:,.0f} labels at {j['labels_per_s']:.1f}/s, "
             "alongside evaluation)",
             "assumptions:"]
    lines += [f"  - {a}" for a in p["assumptions"]]
    return "\n".join(lines)


def count_split(path: str) -> tuple[int, float]:
    """(records, harmful questions per record) of a benchmark file."""

    recs = load_benchmark(path, check_images=False)
    if not recs:
        raise CostError(f"{path}: no records")
    return len(recs), sum(len(r.unsafe_pairs) for r in recs) / len(recs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m safeeraser.bench.grid_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a gpu_check or bench JSON file, or 'flops' (FLOP counts at an assumed MFU)")
    p.add_argument("--train_file", default=None, help="count the forget set's records and questions here")
    p.add_argument("--val_file", default=None)
    p.add_argument("--answer_tokens", type=int, default=Setting.answer_tokens)
    p.add_argument("--gpus", type=int, default=Setting.gpus)
    p.add_argument("--gpus_per_run", type=int, default=Setting.gpus_per_run)
    p.add_argument("--judge_latency", type=float, default=Setting.judge_latency_s)
    p.add_argument("--train_mfu", type=float, default=0.40, help="flops: assumed MFU of training and prompts")
    p.add_argument("--infer_mfu", type=float, default=0.10, help="flops: assumed MFU of sampled decoding")
    p.add_argument("--peak_flops", type=float, default=H100_PEAK, help="flops: the GPU's dense bf16 peak")
    p.add_argument("--json", default=None, help="also write the prediction here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setting = replace(Setting(), answer_tokens=args.answer_tokens, gpus=args.gpus, gpus_per_run=args.gpus_per_run,
                      judge_latency_s=args.judge_latency)
    try:
        if args.train_file or args.val_file:
            if not (args.train_file and args.val_file):
                raise CostError("--train_file and --val_file go together")
            (tr, k), (va, _) = count_split(args.train_file), count_split(args.val_file)
            setting = replace(setting, train_records=tr, val_records=va, pairs_per_record=k,
                              files=f"counted in {args.train_file}, {args.val_file}")
        if args.source == "flops":
            costs = costs_from_flops(setting, args.train_mfu, args.infer_mfu, args.peak_flops)
        else:
            path = Path(args.source)
            try:
                doc = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CostError(f"{path}: cannot read a JSON file ({exc})") from None
            costs = costs_from_json(doc, setting, source=str(path))
    except (CostError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pred = predict(costs, setting)
    print(format_prediction(pred))
    if args.json:
        atomic_write_json(args.json, pred)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
