"""Unlearning steps per second, peak memory and the outside-forward/backward share of one configuration.

Each configuration runs in a process of its own, so that nothing of one carries into the next: timed and
profiled runs are forked from a server that has imported the libraries (`run_in_subprocess`), memory runs
start a fresh interpreter (`python -m safeeraser.bench.train_bench SPEC OUT`, see `measure_memory`).
What is timed is the training loop itself (`train.loop.Trainer`: its dataset, loader, model preparation, optimizer, schedule, step and logging), observed through its
hooks (`TrainHooks`): no training step lives here. Both configurations of a pair differ only in their
training config: micro-batch size, fused or per-view forward, logits at every position or not, and
where the frozen reference comes from (`kl_reference`).
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

from safeeraser.bench.assets import Assets, linear_params, load_model
from safeeraser.bench.memory import PeakMemory
from safeeraser.train.config import load_config


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
    profile_ops: bool = False  # torch.profiler over the timed steps (a run of its own: it slows the step)
    answer_logits_only: bool = True  # False: logits at every position, as the reference's HF forward makes
    peft_layers: bool = False  # PEFT's own LoRA layers (the reference's), not ours (LoRA.layers=fast)
    # Seconds of the plain-matmul probe behind compute_share (matmul_flops_per_s). 0: no probe, for the runs
    # whose rates nobody reads (memory, profile); the smoke modes run it briefly (bench.command.SMOKE_MATMUL_S).
    matmul_seconds: float = 0.5

    @property
    def label(self) -> str:
        return f"{self.method}/{self.way}"


def train_settings(spec: TrainSpec, assets) -> dict:
    """The training configuration: TrainConfig's defaults, plus the data, the batch shape and the way."""
    return {
        "model_path": str(assets.model_path), "data_path": str(assets.train_file), "idk_path": str(assets.prompt_file),
        "forget_loss": spec.method, "batch_size": spec.batch_size, "gradient_accumulation_steps": spec.accumulation,
        "fused_forward": spec.fused_forward, "answer_logits_only": spec.answer_logits_only,
        "model_dtype": assets.dtype, "seed": spec.seed, "gradient_checkpointing": spec.gradient_checkpointing,
        "report_to": "none", "kl_reference": "copy" if spec.reference_copy else "adapter",
        "LoRA": {"layers": "peft" if spec.peft_layers else "fast"},
    }


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


class StepTimer:
    """TrainHooks that time each optimizer step by phase (data, forward, backward, optimizer, logging:
    the loop's own phases), with its CPU time, samples, tokens and model FLOPs. Counting tokens and
    FLOPs happens after a step's clock stops."""

    PHASES = ("data", "forward", "backward", "optimizer", "logging")

    def __init__(self, warmup: int, device: str, flops_of):
        self.warmup, self.device, self.flops_of = warmup, device, flops_of
        self.steps: list[dict] = []
        self.views: list[dict] = []
        self.last_row: dict = {}

    def _now(self) -> float:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def _open(self) -> None:
        self.times = dict.fromkeys(self.PHASES, 0.0)
        self.views = []
        self.start = self.last = self._now()
        self.cpu_start = time.process_time()

    def on_start(self, trainer) -> None:
        self._open()

    def on_batch(self, trainer, views) -> None:
        self.views.append(views)

    def on_phase(self, trainer, name) -> None:
        now = self._now()
        self.times[name] += now - self.last
        self.last = now
        if name != "logging":
            return
        step = {**self.times, "total": now - self.start, "cpu": time.process_time() - self.cpu_start}
        if trainer.global_step > self.warmup:
            names = trainer.method.views()
            step["samples"] = sum(v[names[0]]["input_ids"].shape[0] for v in self.views)
            step["tokens"] = sum(int(v[n]["attention_mask"].sum()) for v in self.views for n in names)
            step["flops"] = sum(self.flops_of(trainer, v) for v in self.views)
            self.steps.append(step)
        self._open()

    def on_step(self, trainer, row) -> None:
        self.last_row = row


def _run(spec: TrainSpec, assets) -> dict:
    import torch

    from safeeraser.train.loop import Trainer

    device = assets.device
    save_dir = tempfile.mkdtemp(prefix="bench-run-")
    total_steps = spec.warmup + spec.steps
    cfg = load_config(None, settings={**train_settings(spec, assets), "save_dir": save_dir,
                                      "max_train_steps": total_steps, "num_epochs": 100000, "save_steps": 0,
                                      "overwrite": True, "eval_steps": 0})
    trainer = Trainer(cfg, load_model=lambda path, dtype: load_model(assets, seed=cfg.optim.seed))
    timer = StepTimer(spec.warmup, device, flops_of=None)
    trainer.hooks.append(timer)
    trainer.setup()
    model = trainer.acc.unwrap_model(trainer.model)
    params = linear_params(model)
    base_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" not in n)
    text_cfg = model.config.get_text_config()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ref_names = trainer.method.reference_views()
    image_tokens = trainer.dataset.encoder.image(trainer.dataset.items[0].forget.image)[1]
    timer.flops_of = lambda tr, views: _flops(views, tr.method.views(), ref_names, params, text_cfg, trainable,
                                              image_tokens)
    ops = OpProfile(spec.warmup) if spec.profile_ops else None
    if ops is not None:
        trainer.hooks.append(ops)
    trainer.train()
    # The profile ends with the timed steps: the matmul probe below is not the step's (it was 80% of a
    # --quick profile's "matrix products").
    op_shares = ops.shares() if ops is not None else None
    steps = timer.steps

    def med(key):
        return statistics.median(s[key] for s in steps)

    wall = sum(s["total"] for s in steps)
    step_samples = steps[0]["samples"]
    out = {
        "label": spec.label, "method": spec.method, "way": spec.way, "device": device,
        "threads": torch.get_num_threads(), "batch_size": spec.batch_size, "accumulation": spec.accumulation,
        "effective_batch": step_samples, "fused_forward": spec.fused_forward,
        "kl_reference": ("second loaded copy" if trainer.ref_model is not None else
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
        "breakdown_s": {k: sum(s[k] for s in steps) for k in StepTimer.PHASES},
        "loss_last": timer.last_row.get("loss/total"),
    }
    out["breakdown_s"]["other"] = wall - sum(out["breakdown_s"].values())
    out["share"] = {k: v / wall for k, v in out["breakdown_s"].items()}
    out["outside_forward_backward_share"] = 1 - (out["breakdown_s"]["forward"] + out["breakdown_s"]["backward"]) / wall
    if spec.peak_flops > 0 and device == "cuda":
        out["mfu"] = out["model_flops_per_s"] / spec.peak_flops
    # The limit on this machine: a plain matmul of the language model's widest layer over a step's tokens,
    # so model_flops_per_s / matmul_flops_per_s is the share of the machine's compute the step uses.
    if spec.matmul_seconds > 0:
        mean_tokens = sum(s["tokens"] for s in steps) / len(steps) / max(spec.accumulation, 1)
        out["matmul_flops_per_s"] = matmul_flops_per_s(int(mean_tokens), text_cfg.hidden_size,
                                                       text_cfg.intermediate_size, model.dtype, device,
                                                       seconds=spec.matmul_seconds)
        out["compute_share"] = out["model_flops_per_s"] / out["matmul_flops_per_s"]
    if op_shares is not None:
        out["op_shares"] = op_shares
    if spec.profile_data:
        from safeeraser.train.dataset import ViewCollator

        out["data_costs_ms"] = _data_costs(trainer.dataset, ViewCollator(trainer.pad_id, trainer.family),
                                           spec.batch_size)
    return out


# Groups of torch ops for the step's time profile, by name: what a reader asks of a step first.
OP_GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "attention": ("scaled_dot_product",),
    "data loader": ("enumerate(DataLoader)",),
    "sparse LoRA dropout (its own code)": ("_DropAt",),
    "optimizer": ("Optimizer.step", "Optimizer.zero_grad", "aten::_foreach"),
}


class OpProfile:
    """TrainHooks that run torch.profiler over the timed steps (after `warmup` optimizer steps) and give
    each op group's share of the self CPU time (OP_GROUPS; the rest is the model's elementwise ops and
    autograd's bookkeeping) and the largest single ops."""

    def __init__(self, warmup: int):
        self.warmup, self.prof = warmup, None

    def on_start(self, trainer) -> None:
        self._maybe_start(trainer)

    def on_batch(self, trainer, views) -> None:
        pass

    def on_phase(self, trainer, name) -> None:
        if name == "logging":
            self._maybe_start(trainer)

    def on_step(self, trainer, row) -> None:
        pass

    def _maybe_start(self, trainer) -> None:
        if self.prof is None and trainer.global_step >= self.warmup:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.start()

    def shares(self, top: int = 8) -> dict:
        self.prof.stop()
        events = [(e.key, e.self_cpu_time_total) for e in self.prof.key_averages()]
        total = sum(t for _, t in events) or 1.0
        groups = dict.fromkeys([*OP_GROUPS, "other"], 0.0)
        for key, t in events:
            group = next((g for g, names in OP_GROUPS.items() if any(n in key for n in names)), "other")
            groups[group] += t / total
        largest = sorted(events, key=lambda e: -e[1])[:top]
        return {"groups": groups, "largest_ops": {k: t / total for k, t in largest}}


def matmul_flops_per_s(tokens: int, hidden: int, intermediate: int, dtype, device: str, seconds: float = 0.5) -> float:
    """FLOP/s of (tokens x hidden) @ (hidden x intermediate), the shape of an MLP projection over a
    micro-batch, on this device, dtype and thread count: the compute a step could use at best."""
    import torch

    a = torch.randn(max(tokens, 1), hidden, dtype=dtype, device=device)
    b = torch.randn(hidden, intermediate, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.matmul(a, b)  # warm-up: library dispatch, allocator
    sync()
    reps, start = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        reps += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and reps >= 3:
            return 2 * a.shape[0] * hidden * intermediate * reps / elapsed


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

# What every configuration's process imports before its baseline (_import_libraries): the fork server
# imports them once, and each configuration's process is forked from it with them loaded.
PRELOAD = ["torch", "peft", "transformers", "safeeraser.train.loop", "safeeraser.train.step",
           "safeeraser.bench.train_bench"]


def measure_memory(spec: TrainSpec, fresh: bool = True) -> dict:
    """Peak memory of a configuration from a short run of its own, with the allocator returning freed
    memory (LIVE_MEMORY_ENV); its speed is not what the configuration runs at. A fresh process, not a fork:
    a forked process's resident set grows by every library page it touches (mapped in the server, not yet
    in the fork), ~80 MB on the tiny model, which a fresh process counts before its baseline. `fresh=False`
    (the bench's --quick, whose numbers mean nothing) forks: the same code, ~5 s less."""
    from dataclasses import replace

    # no matmul probe: only peak_mb is read, and the probe's tensors are no part of the configuration
    return run_in_subprocess(replace(spec, steps=2, warmup=1, profile_data=False, matmul_seconds=0.0),
                             env=LIVE_MEMORY_ENV, fresh=fresh)


def measure_op_shares(spec: TrainSpec) -> dict:
    """Where a configuration's step time goes, from a profiled run of its own (the profiler slows every op,
    so its rates are not the configuration's)."""
    from dataclasses import replace

    return run_in_subprocess(replace(spec, profile_ops=True, profile_data=False, matmul_seconds=0.0))["op_shares"]


_FORKSERVER = None


def _context():
    """multiprocessing's fork server with the libraries preloaded, or None where there is none (not Linux).
    A configuration still runs in a process of its own, from a state that holds nothing but imported
    modules, which is what a fresh process holds at its baseline; it saves each configuration the ~5 s of
    importing torch, transformers and peft."""
    global _FORKSERVER
    import multiprocessing as mp

    if _FORKSERVER is None and "forkserver" in mp.get_all_start_methods() and sys.platform.startswith("linux"):
        _FORKSERVER = mp.get_context("forkserver")
        _FORKSERVER.set_forkserver_preload(PRELOAD)
    return _FORKSERVER


def run_in_subprocess(spec: TrainSpec, env: dict | None = None, fresh: bool = False) -> dict:
    """Run one configuration in a process of its own (with `env` added to its environment) and return its
    result: forked from the fork server where there is one (timing and profiling: what they measure starts
    after warm-up steps), a fresh Python process when `fresh` or where there is none."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        spec_path, out_path, log_path = Path(tmp) / "spec.json", Path(tmp) / "result.json", Path(tmp) / "log.txt"
        spec_path.write_text(json.dumps(asdict(spec)))
        env = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
        ctx = None if fresh else _context()
        if ctx is not None:
            proc = ctx.Process(target=_child, args=(str(spec_path), str(out_path), str(log_path), env))
            proc.start()
            proc.join()
            code = proc.exitcode
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
        else:
            import subprocess

            run = subprocess.run([sys.executable, "-m", "safeeraser.bench.train_bench", str(spec_path), str(out_path)],
                                 env={**os.environ, **env}, capture_output=True, text=True)
            code, log = run.returncode, run.stderr or run.stdout
        if code != 0 or not out_path.exists():
            tail = "\n".join(log.strip().splitlines()[-25:])
            raise RuntimeError(f"training configuration {spec.label} failed (exit {code}):\n{tail}")
        return json.loads(out_path.read_text())


def _child(spec_path: str, out_path: str, log_path: str, env: dict) -> None:
    """A configuration's process, forked from the fork server: its output to a log (the bench's own stays
    readable), the environment a fresh process would have been started with, then `main`."""
    import logging
    import traceback
    import warnings

    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        main([spec_path, out_path])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


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
    code = main()
    # The result is on disk: skip the interpreter's teardown of torch, transformers and peft (~1.3 s of CPU,
    # as long as a tiny configuration's steps), which a memory run on a CPU pays each time.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
