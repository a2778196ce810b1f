"""Unlearning steps per second, peak memory and the outside-forward/backward share of one configuration.

Each configuration runs in a fresh process (`python -m safeeraser.bench.train_bench SPEC OUT`), so that
its peak memory is its own. The step is the training loop's own pieces, timed directly: the dataset
and collator of `train.loop`, `prepare_model`, AdamW, the cosine schedule, `compute_loss`, backward,
clipping, and the loop's per-step logging (finite check, loss means, a JSON-lines row). Both
configurations of a pair share all of it; they differ only in micro-batch size, fused or per-view
forward, and where the frozen reference comes from.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class TrainSpec:
    method: str  # gdpd, klpd, ...
    way: str  # "ours" or "reference"
    batch_size: int
    accumulation: int
    fused_forward: bool
    reference_copy: bool  # a second loaded model as the frozen KL reference (the reference's way)
    steps: int
    warmup: int
    assets: dict
    threads: int = 0
    seed: int = 233
    gradient_checkpointing: bool = False
    peak_flops: float = 0.0
    profile_data: bool = False
    answer_logits_only: bool = True  # False: logits at every position, as the reference's HF forward makes

    @property
    def label(self) -> str:
        return f"{self.method}/{self.way}"


def train_overrides(spec: TrainSpec, assets) -> list[str]:
    """The training configuration: TrainConfig's defaults, plus the data, the batch shape and the way."""
    return [
        f"model_path={assets.model_path}", f"data_path={assets.train_file}", f"idk_path={assets.prompt_file}",
        f"forget_loss={spec.method}", f"batch_size={spec.batch_size}",
        f"gradient_accumulation_steps={spec.accumulation}", f"fused_forward={str(spec.fused_forward).lower()}",
        f"answer_logits_only={str(spec.answer_logits_only).lower()}",
        f"model_dtype={assets.dtype}", f"seed={spec.seed}",
        f"gradient_checkpointing={str(spec.gradient_checkpointing).lower()}", "report_to=none",
    ]


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class _Batches:
    """The loader, cycled over epochs the way the loop sets them."""

    def __init__(self, loader, dataset, sampler):
        self.loader, self.dataset, self.sampler = loader, dataset, sampler
        self.epoch = 0
        self._it = iter(loader)

    def next(self):
        try:
            return next(self._it)
        except StopIteration:
            self.epoch += 1
            self.sampler.set_epoch(self.epoch)
            self.dataset.set_epoch(self.epoch)
            self._it = iter(self.loader)
            return next(self._it)


def _flops(views: dict, names: list[str], ref_names: list[str], params: dict, text_cfg, trainable: int,
           image_tokens: int) -> float:
    """Model FLOPs of one micro-batch (an estimate, counting real tokens only): a forward is 2 FLOPs per
    matmul weight per token plus attention (4·layers·hidden·n² per sequence); the backward reaches the
    inputs of every language-model layer (as much again) and makes weight gradients for the trainable
    matmuls only (2·trainable per token); the vision tower is frozen (forward only); the reference forward
    counts once."""
    layers, hidden = text_cfg.num_hidden_layers, text_cfg.hidden_size

    def forward(name):
        lengths = views[name]["attention_mask"].sum(1).tolist()
        tokens = sum(lengths)
        text = 2 * params["text"] * tokens + 4 * layers * hidden * sum(n * n for n in lengths)
        vision = 2 * (params["vision"] + params["projector"]) * image_tokens * len(lengths)
        return text, vision, tokens

    total = 0.0
    for n in names:
        text, vision, tokens = forward(n)
        total += 2 * text + vision + 2 * trainable * tokens
    for n in ref_names:
        text, vision, _ = forward(n)
        total += text + vision
    return total


def measure(spec: TrainSpec) -> dict:
    import torch

    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    from safeeraser.bench.assets import Assets
    from safeeraser.bench.memory import PeakMemory

    assets = Assets.from_dict(spec.assets)
    _import_libraries()  # before the baseline: library code is not what a configuration costs
    with PeakMemory(assets.device) as mem:
        result = _run(spec, assets)
    result.update(mem.result())
    return result


def _import_libraries() -> None:
    import peft  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration  # noqa: F401

    import safeeraser.train.loop  # noqa: F401
    import safeeraser.train.step  # noqa: F401


def _run(spec: TrainSpec, assets) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    from safeeraser.bench.assets import linear_params, load_model
    from safeeraser.data.encode import pad_token_id
    from safeeraser.io import append_jsonl
    from safeeraser.models.loading import load_processor
    from safeeraser.train.config import load_config
    from safeeraser.train.dataset import EpochSampler, ViewCollator
    from safeeraser.train.loop import build_dataset
    from safeeraser.train.methods import parse_method
    from safeeraser.train.model_setup import optimizer_groups, prepare_model
    from safeeraser.train.step import compute_loss

    device = assets.device
    cfg = load_config(None, train_overrides(spec, assets))
    method = parse_method(cfg.forget_loss).with_weights(dict(cfg.loss_weights))
    torch.manual_seed(cfg.seed)
    from safeeraser.data.encode import batch_to
    from safeeraser.models.families import family_of_path

    family = family_of_path(assets.model_path)
    processor = load_processor(assets.processor_path)
    pad_id = pad_token_id(processor.tokenizer)
    dataset = build_dataset(cfg, method, processor, family)
    model = load_model(assets, seed=cfg.seed)
    params = linear_params(model)
    base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    text_cfg = model.config.text_config
    ref_names = method.reference_views()
    ref_model = None
    if spec.reference_copy and ref_names:
        ref_model = load_model(assets, seed=cfg.seed).eval().requires_grad_(False)
    model = prepare_model(model, cfg, family)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(optimizer_groups(model, cfg.weight_decay), lr=cfg.lr)
    total_steps = spec.warmup + spec.steps
    scheduler = get_scheduler(cfg.lr_scheduler_type, optimizer,
                              num_warmup_steps=int(cfg.warmup_ratio * total_steps + 0.999),
                              num_training_steps=total_steps)
    sampler = EpochSampler(len(dataset), cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=ViewCollator(pad_id, family),
                        num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed))
    batches = _Batches(loader, dataset, sampler)
    image_tokens = dataset.encoder.image(dataset.items[0].forget.image)[1]
    log_path = Path(tempfile.mkdtemp(prefix="bench-log-")) / "log.jsonl"

    model.train()
    steps = []
    for step in range(total_steps):
        _sync(device)
        t_step = time.perf_counter()
        cpu_step = time.process_time()
        t = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0, "logging": 0.0}
        window: dict[str, list] = {}
        samples = tokens = 0
        flops = 0.0
        for _ in range(spec.accumulation):
            a = time.perf_counter()
            views = batches.next()
            views = {v: batch_to(batch, device) for v, batch in views.items()}
            _sync(device)
            b = time.perf_counter()
            loss, parts = compute_loss(model, views, method, cfg, pad_id, family, ref_model=ref_model)
            _sync(device)
            c = time.perf_counter()
            (loss / spec.accumulation).backward()
            _sync(device)
            d = time.perf_counter()
            if not torch.isfinite(loss.detach()).item():  # the loop's divergence check, every micro-batch
                raise RuntimeError(f"{spec.label}: loss is {loss.item()} at step {step}")
            for k, v in {"total": loss.detach(), **parts}.items():
                window.setdefault(k, []).append(v)
            e = time.perf_counter()
            t["data"] += b - a
            t["forward"] += c - b
            t["backward"] += d - c
            t["logging"] += e - d
            rows = views[method.views()[0]]["input_ids"].shape[0]
            samples += rows
            tokens += sum(int(views[n]["attention_mask"].sum()) for n in method.views())
            flops += _flops(views, method.views(), ref_names, params, text_cfg, trainable, image_tokens)
        a = time.perf_counter()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        _sync(device)
        b = time.perf_counter()
        means = {f"loss/{k}": torch.stack(v).mean().item() for k, v in window.items()}
        append_jsonl(log_path, [{"step": step + 1, **means, "lr": scheduler.get_last_lr()[0]}])
        c = time.perf_counter()
        t["optimizer"] += b - a
        t["logging"] += c - b
        t["total"] = c - t_step
        t["cpu"] = time.process_time() - cpu_step
        if step >= spec.warmup:
            steps.append({**t, "samples": samples, "tokens": tokens, "flops": flops})

    def med(key):
        return statistics.median(s[key] for s in steps)

    wall = sum(s["total"] for s in steps)
    step_samples = steps[0]["samples"]
    out = {
        "label": spec.label, "method": spec.method, "way": spec.way, "device": device,
        "threads": torch.get_num_threads(), "batch_size": spec.batch_size, "accumulation": spec.accumulation,
        "effective_batch": step_samples, "fused_forward": spec.fused_forward,
        "kl_reference": ("second loaded copy" if ref_model is not None else
                         "adapter disabled" if ref_names else "none"),
        "steps_timed": len(steps), "warmup_steps": spec.warmup,
        "step_s_median": med("total"), "step_s_all": [s["total"] for s in steps],
        # Median step time: robust to a neighbour's burst on a shared machine; the mean is kept too.
        "samples_per_s": step_samples / med("total"),
        "samples_per_s_mean": sum(s["samples"] for s in steps) / wall,
        # Per second of the process's CPU time: with one thread on a CPU, what a dedicated core gives,
        # whatever else the machine runs meanwhile (on a GPU this says nothing).
        "samples_per_cpu_s": step_samples / med("cpu"),
        "cpu_utilisation": sum(s["cpu"] for s in steps) / wall,
        "tokens_per_s": sum(s["tokens"] for s in steps) / wall,
        "model_flops_per_s": sum(s["flops"] for s in steps) / wall,
        "base_weights_mb": base_bytes / 1024 / 1024, "trainable_params": trainable,
        "matmul_params": params,
        "breakdown_s": {k: sum(s[k] for s in steps) for k in ("data", "forward", "backward", "optimizer", "logging")},
        "loss_last": means.get("loss/total"),
    }
    out["breakdown_s"]["other"] = wall - sum(out["breakdown_s"].values())
    out["share"] = {k: v / wall for k, v in out["breakdown_s"].items()}
    out["outside_forward_backward_share"] = 1 - (out["breakdown_s"]["forward"] + out["breakdown_s"]["backward"]) / wall
    if spec.peak_flops > 0 and device == "cuda":
        out["mfu"] = out["model_flops_per_s"] / spec.peak_flops
    if spec.profile_data:
        out["data_costs_ms"] = _data_costs(dataset, ViewCollator(pad_id, family), spec.batch_size)
    return out


def _data_costs(dataset, collate, batch_size: int) -> dict:
    """Per-item costs of the input pipeline: image preprocessing (uncached and cached), a whole item
    (prompt template, tokenisation, views) with its images cached, and collating a micro-batch."""
    from safeeraser.data.encode import PromptEncoder

    fresh = PromptEncoder(dataset.encoder.processor, dataset.encoder.family, dataset.encoder.max_length)
    images = list(dict.fromkeys(p for it in dataset.items for p in (it.forget.image, it.pd.image)))[:16]
    a = time.perf_counter()
    for p in images:
        fresh.image(p)
    b = time.perf_counter()
    for p in images:
        fresh.image(p)
    c = time.perf_counter()
    n = min(len(dataset), 32)
    for i in range(n):  # images first, so that the next loop times the rest of an item only
        dataset.encoder.image(dataset.items[i].forget.image)
        dataset.encoder.image(dataset.items[i].pd.image)
    d0 = time.perf_counter()
    rows = [dataset[i] for i in range(n)]
    d = time.perf_counter()
    reps = max(1, n // batch_size)
    for r in range(reps):
        collate(rows[r * batch_size:(r + 1) * batch_size] or rows[:batch_size])
    e = time.perf_counter()
    return {"image_uncached": (b - a) * 1000 / len(images), "image_cached": (c - b) * 1000 / len(images),
            "item_encode": (d - d0) * 1000 / n, "collate_batch": (e - d) * 1000 / reps}


# glibc keeps freed heap blocks for reuse, so a CPU process's resident set shows its allocation history
# as much as its live memory (measured: ±50 MB between identical runs of --model small). Served by mmap,
# large blocks go back to the system when freed and the resident set follows live memory; but each
# allocation then faults its pages in, which halves the speed, so memory gets a run of its own.
LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure_memory(spec: TrainSpec) -> dict:
    """Peak memory of a configuration from a short run of its own, with the allocator returning freed
    memory (LIVE_MEMORY_ENV); its speed is not what the configuration runs at."""
    from dataclasses import replace

    return run_in_subprocess(replace(spec, steps=2, warmup=1, profile_data=False), env=LIVE_MEMORY_ENV)


def run_in_subprocess(spec: TrainSpec, env: dict | None = None) -> dict:
    """Run one configuration in a fresh Python process (with `env` added to its environment) and return
    its result."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        env = {**os.environ, **(env or {})}
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env.setdefault("HF_HUB_OFFLINE", "1")
        proc = subprocess.run([sys.executable, "-m", "safeeraser.bench.train_bench", str(spec_path), str(out_path)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out_path.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
            raise RuntimeError(f"training configuration {spec.label} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out_path.read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = TrainSpec(**json.loads(Path(argv[0]).read_text()))
    result = measure(spec)
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    raise SystemExit(main())
