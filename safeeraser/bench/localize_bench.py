"""The importance pass of the methods that decide where to forget (mmunlearner's Fisher saliency, manu's
neuron statistics), on the bench's model and training file, against one unlearning epoch of the same
run: mmunlearner's own steps (gd's two terms on the full language model), timed after one warm-up step
and multiplied by the steps of an epoch. Its memory: on a GPU the allocator's peak during the pass; on
any device the pass's own state, as the code sizes it (Fisher: one float32 accumulator per trainable
weight; neuron statistics: five float64 sums per neuron). Neither pass copies the model. The reference
has no such methods: there is nothing to compare with."""
from __future__ import annotations

import gc
import json
import math
import tempfile
import time
from pathlib import Path

from safeeraser.bench.assets import load_model
from safeeraser.train.config import load_config
from safeeraser.train.localize import SUMMARY_FILE

METHODS = ("mmunlearner", "manu")


class _StepClock:
    """Seconds of the optimizer steps after the first (its first-call costs are not an epoch's)."""

    def __init__(self):
        self.marks: list[float] = []

    def on_step(self, trainer, row) -> None:
        self.marks.append(time.perf_counter())


def measure_localization(assets, steps: int = 3, seed: int = 233) -> dict:
    from safeeraser.train.loop import Trainer

    out: dict = {}
    for i, method in enumerate(METHODS):
        save_dir = tempfile.mkdtemp(prefix=f"bench-{method}-")
        cfg = load_config(None, settings={
            "model_path": str(assets.model_path), "data_path": str(assets.train_file),
            "idk_path": str(assets.prompt_file), "forget_loss": method, "model_dtype": assets.dtype, "seed": seed,
            "report_to": "none", "save_dir": save_dir, "max_train_steps": steps + 1, "num_epochs": 1,
            "overwrite": True, "save_steps": 0, "eval_steps": 0, "tune_language_model": True, "LoRA": {"r": 0}})
        clock = _StepClock()
        trainer = Trainer(cfg, load_model=lambda path, dtype: load_model(assets, seed=seed), hooks=[clock]).setup()
        summary = json.loads((Path(save_dir) / SUMMARY_FILE).read_text())
        model = trainer.acc.unwrap_model(trainer.model)
        if summary["target"] == "weights":
            state_bytes = 4 * sum(p.numel() for p in model.parameters() if p.requires_grad)
        else:
            state_bytes = 5 * 8 * sum(b for part in summary["selected"].values() for b in [part["of"]])
        row = {"items": summary["items"], "pass_seconds": summary["seconds"], "state_bytes": state_bytes,
               "peak_gpu_bytes": summary["peak_gpu_bytes"], "selected": summary["selected"]}
        if trainer.method.trains():
            trainer.train()
            step = (clock.marks[-1] - clock.marks[0]) / max(1, len(clock.marks) - 1)
            row["step_seconds"] = step
            row["epoch_seconds"] = step * math.ceil(len(trainer.loader) / cfg.optim.gradient_accumulation_steps)
        out[method] = row
        del trainer, model  # the next method's pass and its GPU peak without this one's model and optimizer
        if i == len(METHODS) - 1:
            break  # no next pass: a full collection here is ~0.35 s of CPU for nothing measured
        gc.collect()
        if assets.device == "cuda":
            import torch

            torch.cuda.empty_cache()
    epoch = out["mmunlearner"]["epoch_seconds"]
    for row in out.values():
        row["share_of_epoch"] = row["pass_seconds"] / epoch
    return out
