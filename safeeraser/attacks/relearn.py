"""relearn: a few steps of fine-tuning on a small part of the forget set, then the answers. Knowledge that
was hidden rather than removed comes back after a handful of steps on a sample of it (Lynch et al. 2024,
"Eight Methods to Evaluate Robust Unlearning in LLMs", arXiv 2402.16835; Hu et al. 2024, "Jogging the
Memory of Unlearned LLMs Through Targeted Relearning Attacks", arXiv 2406.13356).
  forget    NLL on the harmful answers of one record in `every` of the forget split (--forget_file; in a
            grid, the experiment's train file; without it, the answered file's) (gd with loss_weights
            forget +1, retain 0)
  harmless  NLL on the harmless questions of the same records' images (forget 0, retain 1): does
            training on the image's harmless content bring the harmful back?
The unlearned model is merged into a full model folder first (OUTPUT.attack/merged-KEY: its adapter and
the base), a new LoRA adapter is trained on top with this toolkit's training loop, and the attacked model
answers the whole file. Options (--option KEY=VALUE): steps (10), every (10), lr (1e-4), r (LoRA rank, 8).
An ASR-against-steps curve is one run per `steps`."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from safeeraser.attacks.base import Attack, absolute_records, is_count, is_number
from safeeraser.io import atomic_write_json, read_json_records
from safeeraser.provenance import digest, weights_identity
from safeeraser.train.config import load_config

WEIGHTS = {"forget": {"forget": 1.0, "retain": 0.0}, "harmless": {"forget": 0.0, "retain": 1.0}}


def merged_model(settings, work: Path) -> str:
    """The unlearned model as one full model folder (the base itself when there is no checkpoint)."""
    if not settings.checkpoint_path:
        return settings.model_path
    # named by what it is made of: a checkpoint retrained in place is merged again, never reused
    made_of = {"model": settings.model_path, "checkpoint": weights_identity(settings.checkpoint_path)}
    out = work / f"merged-{digest(made_of)[:12]}"
    if not (out / "config.json").exists():
        from safeeraser.models.checkpoint import apply_checkpoint
        from safeeraser.models.loading import load_processor

        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model = apply_checkpoint(settings.model_path, settings.checkpoint_path, settings.dtype, merge=True)
        model.save_pretrained(tmp)
        load_processor(settings.model_path).save_pretrained(tmp)
        tmp.rename(out)  # whole or not at all: a killed merge leaves merged.tmp, made again next time
        for old in work.glob("merged-*"):  # merges of the checkpoint as it was before: a full model each
            if old != out and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)
    return str(out)


class Relearn(Attack):
    name = "relearn"
    variants = tuple(WEIGHTS)
    paper = "Lynch et al. 2024 (arXiv 2402.16835); Hu et al. 2024 (arXiv 2406.13356)"
    options = {"steps": 10, "every": 10, "lr": 1e-4, "r": 8}

    def option_problem(self, key, value):
        if key == "lr":
            return None if is_number(value) and value > 0 else "a number > 0"
        return None if is_count(value) else "an integer >= 1"

    def prepare(self, variant, settings, work: Path, options: dict, forget_file: Path | None = None):
        from safeeraser.train.loop import run_training

        opts = options  # checked by run_attack (check_options' output, defaults filled)
        base = merged_model(settings, work)
        # the forget split (or the attacked file, its image paths absolute already)
        records = absolute_records(forget_file) if forget_file else read_json_records(settings.eval_file)
        part = [r for i, r in enumerate(records) if i % opts["every"] == 0]
        # named by all it is trained from: other options, data or model never reuse an adapter
        base_identity = weights_identity(base) if Path(base).is_dir() else base  # a hub id names its weights
        key = digest({"base": base, "base_identity": base_identity, "variant": variant, "options": opts,
                      "data": part, "seed": settings.seed})[:12]
        data = work / f"relearn_{variant}_{key}_data.json"
        atomic_write_json(data, part)
        adapter = work / f"relearn_{variant}_{opts['steps']}steps_{key}"
        if not (adapter / "run_complete.json").exists():
            cfg = load_config(None, settings={
                "model_path": base, "data_path": str(data), "forget_loss": "gd", "loss_weights": WEIGHTS[variant],
                "max_train_steps": opts["steps"], "num_epochs": 100000, "lr": opts["lr"],
                "lr_scheduler_type": "constant", "warmup_ratio": 0.0, "batch_size": min(4, len(part)),
                "gradient_accumulation_steps": 1, "seed": settings.seed, "save_dir": str(adapter),
                "overwrite": True, "report_to": "none", "save_steps": 0,
                "LoRA": {"r": opts["r"], "alpha": 2 * opts["r"], "dropout": 0.0}})
            run_training(cfg)
        return dataclasses.replace(settings, model_path=base, checkpoint_path=str(adapter))


ATTACK = Relearn()
