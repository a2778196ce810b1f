"""The training loop shared by unlearning (`forget.py`) and the vanilla fine-tune (`safeeraser finetune`)."""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.base import BenchmarkItems
from safeeraser.io import (DataError, append_jsonl, atomic_write_json, atomic_write_text, ensure_writable_dir,
                           read_jsonl_tolerant)
from safeeraser.numerics import pin
from safeeraser.train.config import (RESUME_FREE_KEYS, ConfigError, check_model_family, data_paths, load_records_first,
                                     resume_differences)
from safeeraser.train.distributed import (deepspeed_adapter_state, accelerator_kwargs, fill_size_autos,
                                          sync_engine_config, uneven_batches_note)
from safeeraser.train import step as train_step  # looked up per call: tests replace compute_loss
from safeeraser.train.anchor_merge import FORGET_ADAPTER_DIR, masked_merge, train_anchor
from safeeraser.train.localize import SUMMARY_FILE, check_localized, localize
from safeeraser.train.methods import method_of
from safeeraser.train.model_setup import optimizer_groups, prepare_model
from safeeraser.train.plots import plot_loss_curves
from safeeraser.train.state import (FORMAT, STATE_FILE, checkpoint_dir, latest_checkpoint, load_training_state,
                                    publish, read_state, remove_partial, save_training_state, temporary_dir)
from safeeraser.train.tracking import check_tracker, tracker_config
from safeeraser.data.views import all_retain, forget_items, load_refusals, vanilla_examples
from safeeraser.progress import progress
from safeeraser.provenance import digest, environment, model_identity
from safeeraser.reference.checkout import training_tags

log = logging.getLogger(__name__)


DEEPSPEED_MERGE = ("'{}' merges its two adapters weight by weight, which DeepSpeed's partitioned parameters do "
                   "not allow: launch it with a plain multi-GPU (DDP) accelerate config")


class TrainingDiverged(RuntimeError):
    pass


def build_dataset(cfg, method, processor, family, records: list | None = None):
    """The method's training dataset from the data files (or from their already loaded `records`)."""
    from safeeraser.data.encode import PromptEncoder
    from safeeraser.train.dataset import LengthCheck, Pairing, TargetDataset, UnlearnDataset

    records = load_records_first(cfg) if records is None else records
    tags = None
    if cfg.data.prompt_format == "reference":
        tags = training_tags(cfg.data.reference_dir, [cfg.model.model_family, *family.reference_names])
    encoder = PromptEncoder(processor, family, max_length=cfg.data.max_length or None,
                            end_token=cfg.data.train_end_token, reference_tags=tags)
    check = lambda: LengthCheck(max_positions(cfg.model.model_path), ", ".join(str(p) for p in data_paths(cfg)))  # noqa: E731
    views = method.data_views()
    other = records if isinstance(records, BenchmarkItems) else None  # another benchmark's training items
    if views == ["target"]:  # the vanilla fine-tune: everything the benchmark teaches
        examples = teaching(other) if other else vanilla_examples(records)
        if cfg.data.teach == "retain":  # the oracle: never shown what the forget split holds
            forgotten = {it.forget for it in (other.items if other else forget_items(records))}
            examples = [ex for ex in examples if ex not in forgotten]
        return TargetDataset(examples, encoder, check())
    refusals = load_refusals(cfg.data.idk_path) if "idk" in views else []
    items, pool = (other.items, other.pool) if other else (forget_items(records), all_retain(records))
    pairing = Pairing(cfg.data.retain_pairing, cfg.data.pd_pairing, cfg.data.text_casing)
    if pairing.pd == "reference" and "pd" in views and len(pool) > len(items):
        raise DataError(
            f"{', '.join(data_paths(cfg))}: pd_pairing=reference takes the PD example at the retain draw's index, "
            f"but the data has {len(pool)} harmless pairs and only {len(items)} unsafe pairs: the reference's "
            f"data_module.py raises IndexError on about {1 - len(items) / len(pool):.0%} of the items here. "
            "Use pd_pairing=own (each pair's own SD example)")
    return UnlearnDataset(items, views, encoder, refusals, cfg.optim.seed, pairing, pool, check())


def teaching(data: BenchmarkItems) -> list:
    """Another benchmark's examples for the vanilla fine-tune: its own list where it has one, else the
    forget split's and its retain split's."""
    bench = benchmark_for(data.benchmark)
    if bench.teaching_examples is not None:
        return bench.teaching_examples(Path(data.root))
    return [it.forget for it in data.items] + list(data.pool)


def max_positions(model_path) -> int | None:
    """The language model's positions (max_position_embeddings), from the model's config file."""
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(str(model_path)).get_text_config()
    return getattr(text, "max_position_embeddings", None)


def warmup_steps(cfg, total_steps: int) -> int:
    """Warm-up steps: rounded up (ours: a run of any length warms up at least one step when the ratio is
    positive) or with Python's round, half to even (the reference's: a 0.06 ratio of 8 steps is none)."""
    exact = cfg.optim.warmup_ratio * total_steps
    return round(exact) if cfg.optim.warmup_rounding == "round" else math.ceil(exact)


def advance_schedule(scheduler, cfg, num_processes: int) -> None:
    """One optimizer step's advance of the learning-rate schedule: one step, or (lr_schedule_per_process)
    one per process, as accelerate's wrapper of a prepared scheduler advances the reference's."""
    for _ in range(num_processes if cfg.optim.lr_schedule_per_process else 1):
        scheduler.step()


def resume_point(cfg, save_dir: Path) -> tuple[Path | None, dict | None]:
    """The checkpoint to resume from and its state, checked against this run's config before any model
    loads: a resumed run must train what the checkpoint's run trained; only its budget may change."""
    resume = cfg.tracking.resume_from_checkpoint
    if not resume:
        return None, None
    ckpt = latest_checkpoint(save_dir) if resume == "latest" else Path(resume)
    if ckpt is None:
        log.warning("resume_from_checkpoint=latest but %s has no complete checkpoint; starting fresh", save_dir)
        return None, None
    state = read_state(ckpt)
    diffs = resume_differences(state["config"], cfg)
    if diffs:
        raise ConfigError(f"key 'resume_from_checkpoint': {ckpt} was trained with other settings: {'; '.join(diffs)}. "
                          f"A resumed run may change only {', '.join(RESUME_FREE_KEYS)}; start a new run "
                          "(another save_dir) to change the others")
    return ckpt, state


def _local_part(p: torch.Tensor) -> torch.Tensor:
    shard = getattr(p, "ds_tensor", None)  # ZeRO-3 keeps this process's partition there; p itself is empty
    return p if shard is None else shard


def _all_agree_finite(acc, local_ok: bool) -> bool:
    return acc.gather(torch.tensor([float(local_ok)], device=acc.device)).min().item() == 1


def require_finite_weights(acc, model, where: str, last_ckpt: Path | None) -> None:
    """A checkpoint or adapter is written only with finite weights: one with NaN/inf would be taken for the
    last good state. Every process checks its own part and all agree, so all raise together."""
    ok = all(bool(torch.isfinite(_local_part(p).detach()).all())
             for p in acc.unwrap_model(model).parameters() if p.requires_grad)
    if not _all_agree_finite(acc, ok):
        last = f"last good checkpoint: {last_ckpt}" if last_ckpt else "no good checkpoint was saved"
        raise TrainingDiverged(f"trainable weights are not finite {where}: nothing saved ({last}); lower lr or "
                               "add a retain term")


def _save_final(acc, model, processor, cfg, save_dir: Path) -> None:
    from accelerate.utils import DistributedType

    unwrapped = acc.unwrap_model(model)
    if acc.distributed_type == DistributedType.DEEPSPEED and cfg.LoRA.r > 0:
        state_dict = deepspeed_adapter_state(acc, model)
    else:
        state_dict = acc.get_state_dict(model)  # gathers ZeRO-3 shards (full fine-tuning)
    if acc.is_main_process:
        # For a PeftModel, save_pretrained keeps only the adapter's keys of state_dict.
        unwrapped.save_pretrained(save_dir, state_dict=state_dict, safe_serialization=True)
        if cfg.LoRA.r == 0:
            processor.save_pretrained(save_dir)  # a full model folder loads like any hub model
        _write_provenance(cfg, save_dir)
    acc.wait_for_everyone()


def _write_provenance(cfg, save_dir: Path) -> None:
    """What the adapter (or model) was made on: loading it onto another base model is then noticed
    (models/checkpoint.py)."""
    from safeeraser.models.checkpoint import PROVENANCE_FILE

    config = OmegaConf.to_container(cfg, resolve=True)
    atomic_write_json(save_dir / PROVENANCE_FILE, {"base_model": model_identity(cfg.model.model_path),
                                                   "config_sha256": digest(config), "environment": environment()})


BEST_DIR = "best"  # save_best's checkpoint under save_dir (not checkpoint-N: never taken for `latest`)


def _checkpoint(acc, model, optimizer, scheduler, cfg, save_dir: Path, step: int, epoch: int,
                batches_in_epoch: int, last_ckpt: Path | None, best: dict | None = None,
                as_best: bool = False) -> Path:
    """Save under a temporary name and rename when complete, the state file written last: a run killed
    mid-save leaves only the hidden temporary folder, which `latest` never picks. `best` (save_best's best
    so far) goes into the state, so that a resumed run compares with it; `as_best` writes save_dir/best."""
    require_finite_weights(acc, model, f"at step {step}", last_ckpt)
    if as_best:
        tmp, final = save_dir / f".{BEST_DIR}.tmp", save_dir / BEST_DIR
    else:
        tmp, final = temporary_dir(save_dir, step), checkpoint_dir(save_dir, step)
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # left by a save that was cut off
    acc.wait_for_everyone()
    tmp.mkdir(parents=True, exist_ok=True)
    save_training_state(acc, model, optimizer, tmp)
    acc.wait_for_everyone()
    if acc.is_main_process:
        atomic_write_json(tmp / STATE_FILE, {
            "format": FORMAT, "global_step": step, "epoch": epoch, "batches_in_epoch": batches_in_epoch,
            "scheduler": scheduler.state_dict(), "accelerate_step": acc.step,
            "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
            "best": best, "config": OmegaConf.to_container(cfg, resolve=True)})
        publish(tmp, final)
    acc.wait_for_everyone()
    return final


def _require_finite_grad_norm(acc, grad_norm, step: int, epoch: int, last_ckpt: Path | None) -> None:
    """A NaN/inf gradient would be applied and make every weight NaN. Under fp16 the loss scaler skips such
    a step by design (its scale was too high), so there it is not divergence."""
    if grad_norm is None or acc.mixed_precision == "fp16":
        return
    norm = float(grad_norm)
    if not _all_agree_finite(acc, math.isfinite(norm)):
        where = f" (last good checkpoint: {last_ckpt})" if last_ckpt else ""
        raise TrainingDiverged(f"gradient norm is {norm} at step {step}, epoch {epoch}: training diverged; "
                               f"lower lr or add a retain term{where}")


def loader_for_epoch(acc, loader, sampler, dataset, epoch: int, skip_batches: int = 0):
    """The prepared loader for one epoch, its first `skip_batches` (per process) skipped on resume.

    accelerate's loaders re-set their sampler's epoch from their own counter on every pass, and a
    skipping loader's counter starts at 0: set it explicitly so a resumed epoch shuffles alike. With
    several processes that does not reach our sampler (the skipping loader wraps the sharded batch
    sampler one level deeper than accelerate's set_epoch looks), so set the sampler's epoch directly,
    or a resumed multi-process run would replay epoch 0's order."""
    epoch_loader = acc.skip_first_batches(loader, skip_batches) if skip_batches else loader
    epoch_loader.set_epoch(epoch)
    sampler.set_epoch(epoch)
    dataset.set_epoch(epoch)
    return epoch_loader


class TrainHooks:
    """Points where code outside the loop joins a run without a second loop: the bench's timers, the
    in-training evaluation. Every method is optional; the loop calls them in this order per micro-batch:
    on_batch (the views just loaded), on_phase("data" | "forward" | "backward" | "optimizer"), and after
    an optimizer step on_step (its log row: the dict returned is merged into the row before it is
    logged) and on_phase("logging")."""

    def on_start(self, trainer: "Trainer") -> None: ...

    def on_batch(self, trainer: "Trainer", views: dict) -> None: ...

    def on_phase(self, trainer: "Trainer", name: str) -> None: ...

    def on_step(self, trainer: "Trainer", row: dict) -> dict | None: ...

    def on_end(self, trainer: "Trainer") -> None: ...


class Trainer:
    """One unlearning (or fine-tuning) run: `setup()` loads and prepares everything, `train()` runs the
    optimizer steps, `finish()` saves. `run()` does all three. `load_model(path, dtype)` replaces the
    loading of cfg.model.model_path's weights (the bench's randomly initialised 7B model)."""

    def __init__(self, cfg, records: list | None = None, hooks=(), load_model=None, method=None):
        self.cfg, self.records, self.hooks = cfg, records, list(hooks)
        self._load_model = load_model
        self._method = method  # what trains instead of cfg's method (SMFA's retain anchor)

    def _call(self, name: str, *args):
        out = {}
        for hook in self.hooks:
            method = getattr(hook, name, None)  # a hook implements the points it needs
            extra = method(self, *args) if method is not None else None
            if extra:
                out.update(extra)
        return out

    def setup(self) -> "Trainer":
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from torch.utils.data import DataLoader
        from transformers import get_scheduler

        from safeeraser.data.encode import pad_token_id
        from safeeraser.models.loading import check_model_path, family_of, load_model, load_processor, resolve_dtype
        # torch is loaded by now: pinned numerics must already be in force (the command set them first),
        # or this run would compute other numbers than its config says
        pin(self.cfg.optim.numerics)
        from safeeraser.train.dataset import ViewCollator, train_sampler

        cfg = self.cfg
        check_tracker(cfg)  # a missing tracker package: one clear error before any model loads
        self.method = method = self._method or method_of(cfg)
        self.save_dir = save_dir = Path(cfg.tracking.save_dir)
        t = cfg.tracking
        if (save_dir / "run_complete.json").exists() and not t.overwrite and not t.resume_from_checkpoint:
            raise FileExistsError(f"{save_dir} already holds a finished run; set overwrite=true to replace it")
        try:  # before any model loads: a save_dir that cannot be written would be found after the training
            ensure_writable_dir(save_dir, "key 'save_dir'")
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        ckpt, resume_state = resume_point(cfg, save_dir)
        records = load_records_first(cfg) if self.records is None else self.records
        check_model_path(cfg.model.model_path)
        self.anchor_dir = None
        if method.anchor_terms:  # SMFA: its retain anchor trains first, in a run of its own
            if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":  # before the anchor trains
                raise ConfigError(DEEPSPEED_MERGE.format(method.name))
            self.anchor_dir = train_anchor(cfg, method, records, self._load_model)

        self.acc = acc = Accelerator(
            gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps,
            mixed_precision=cfg.optim.mixed_precision or None,
            log_with=None if cfg.tracking.report_to == "none" else cfg.tracking.report_to,
            project_dir=str(save_dir),
            **accelerator_kwargs(),
        )
        sync_engine_config(acc, cfg, resolve_dtype(cfg.model.model_dtype))
        set_seed(cfg.optim.seed)
        self.family = family = family_of(cfg.model.model_path)
        check_model_family(cfg, family.model_type)
        args = method.resolve_args(dict(cfg.method.method_args or {}))
        check_localized(method, args, family, cfg.model.model_path, acc.state.deepspeed_plugin is not None)
        if method.anchor_terms and acc.state.deepspeed_plugin is not None:
            raise ConfigError(DEEPSPEED_MERGE.format(method.name))
        self.processor = processor = load_processor(cfg.model.model_path)
        self.pad_id = pad_token_id(processor.tokenizer)
        self.dataset = dataset = build_dataset(cfg, method, processor, family, records)
        loader_fn = self._load_model or load_model
        model = loader_fn(cfg.model.model_path, cfg.model.model_dtype)
        self.ref_model = None
        if method.reference_views() and (cfg.LoRA.r == 0 or cfg.method.kl_reference == "copy"):
            # Full fine-tuning has no adapter to switch off: only then is a frozen copy needed (or when asked
            # for, as the reference's way: a second loaded model).
            if acc.state.deepspeed_plugin is not None and acc.state.deepspeed_plugin.zero_stage == 3:
                raise ConfigError(f"key 'LoRA.r': '{method.name}' needs a frozen reference; with full fine-tuning "
                                  "(LoRA.r=0) that is a second copy of the model, which ZeRO-3 cannot shard: use LoRA")
            if cfg.method.kl_reference == "copy":
                set_seed(cfg.optim.seed)
                self.ref_model = loader_fn(cfg.model.model_path, cfg.model.model_dtype).eval().requires_grad_(False)
            else:
                self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        # The adapter's initial weights must depend on the seed alone: under ZeRO-3, transformers builds
        # the model inside deepspeed.zero.Init, which draws random numbers a plain load does not.
        set_seed(cfg.optim.seed)
        model = prepare_model(model, cfg, family)
        fill_size_autos(acc, model)
        self.mask = None  # the weights a localized method (mmunlearner, manu, mip_editor) must leave as they are
        if method.importance:  # before the optimizer's groups: the restriction may freeze whole parameters
            save_dir.mkdir(parents=True, exist_ok=True)
            self.mask = localize(model, method, args, cfg, dataset, ViewCollator(self.pad_id, family), acc, family,
                                 self.pad_id, save_dir)
        groups = optimizer_groups(model, cfg.optim.weight_decay)
        if self.mask:
            groups = self.mask.optimizer_groups(groups)
        optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr)
        if self.mask:
            self.mask.attach(optimizer)
        self.sampler = train_sampler(dataset, cfg)
        loader = DataLoader(dataset, batch_size=cfg.optim.batch_size, sampler=self.sampler,
                            collate_fn=ViewCollator(self.pad_id, family), num_workers=cfg.data.workers,
                            # Its own generator: creating an iterator must not draw from the global RNG that
                            # dropout uses, or a resumed run would drop out different units.
                            generator=torch.Generator().manual_seed(cfg.optim.seed))
        note = uneven_batches_note(len(dataset), cfg.optim.batch_size, acc.num_processes)
        if note and acc.is_main_process:
            log.warning(note)
        self.model, self.optimizer, self.loader = acc.prepare(model, optimizer, loader)
        if self.ref_model is not None:
            self.ref_model.to(acc.device)

        steps_per_epoch = math.ceil(len(self.loader) / cfg.optim.gradient_accumulation_steps)
        total_steps = cfg.optim.num_epochs * steps_per_epoch if method.trains() else 0
        if cfg.optim.max_train_steps > 0:
            total_steps = min(total_steps, cfg.optim.max_train_steps)
        self.total_steps = total_steps
        # The schedule counts optimizer steps and is stepped by us once per step: the same schedule
        # whatever the number of processes for the same global batch.
        self.scheduler = get_scheduler(cfg.optim.lr_scheduler_type, optimizer,
                                       num_warmup_steps=warmup_steps(cfg, total_steps),
                                       num_training_steps=total_steps)

        self.global_step, self.start_epoch, self.skip_batches = 0, 0, 0
        self.best = None  # save_best's best so far: key, value, step
        self.log_path = log_path = save_dir / "log.jsonl"
        if ckpt is not None:
            state = resume_state
            load_training_state(acc, self.model, self.optimizer, ckpt)
            self.scheduler.load_state_dict(state["scheduler"])
            acc.step = state["accelerate_step"]
            if acc.scaler is not None and state["scaler"] is not None:
                acc.scaler.load_state_dict(state["scaler"])
            self.global_step, self.start_epoch = state["global_step"], state["epoch"]
            self.skip_batches = state["batches_in_epoch"]
            self.best = state.get("best")
            if acc.is_main_process:  # drop log rows written after the checkpoint
                rows = [r for r in read_jsonl_tolerant(log_path) if r["step"] <= self.global_step]
                atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in rows))
            acc.print(f"resumed from {ckpt} at step {self.global_step}")
        else:
            if acc.is_main_process and log_path.exists():
                log_path.unlink()
            if acc.is_main_process and (save_dir / BEST_DIR).exists():  # an earlier run's best is not this run's
                shutil.rmtree(save_dir / BEST_DIR)
        self.last_ckpt = ckpt
        if acc.is_main_process:
            remove_partial(save_dir)
            save_dir.mkdir(parents=True, exist_ok=True)
            # a finished run this one replaces is finished no more: killed before its end, this run's folder
            # must not look complete with the earlier run's weights (SMFA reuses a complete anchor)
            (save_dir / "run_complete.json").unlink(missing_ok=True)
            atomic_write_text(save_dir / "config.yaml", OmegaConf.to_yaml(cfg))
        if cfg.tracking.report_to != "none":
            # wandb writes ./wandb in the working folder unless told: keep its files with the run's
            acc.init_trackers("safeeraser", config=tracker_config(cfg),
                              init_kwargs={"wandb": {"dir": str(save_dir)}} if cfg.tracking.report_to == "wandb" else {})
        return self

    def _micro_step(self, views: dict, epoch: int):
        """Forward, backward and (on an accumulation boundary) the optimizer update of one micro-batch.
        Returns (loss, its parts, the gradient norm or None)."""
        acc, model = self.acc, self.model
        with acc.accumulate(model):
            loss, parts = train_step.compute_loss(model, views, self.method, self.cfg, self.pad_id, self.family,
                                       ref_model=self.ref_model, epoch=epoch)
            finite = torch.isfinite(loss.detach()).float()
            if acc.gather(finite.reshape(1)).min() < 1:
                where = f" (last good checkpoint: {self.last_ckpt})" if self.last_ckpt else ""
                raise TrainingDiverged(
                    f"loss is {loss.item()} at step {self.global_step + 1}, epoch {epoch}: training diverged; "
                    f"lower lr or add a retain term{where}")
            self._call("on_phase", "forward")
            acc.backward(loss)
            self._call("on_phase", "backward")
            grad_norm = None
            if acc.sync_gradients:
                # An infinite bound measures the norm without changing the gradients (they scale by 1).
                max_norm = self.cfg.optim.max_grad_norm if self.cfg.optim.max_grad_norm > 0 else math.inf
                grad_norm = acc.clip_grad_norm_(model.parameters(), max_norm)
                _require_finite_grad_norm(acc, grad_norm, self.global_step + 1, epoch, self.last_ckpt)
            self.optimizer.step()
            self.optimizer.zero_grad()
            self._call("on_phase", "optimizer")
        return loss, parts, grad_norm

    def train(self) -> "Trainer":
        cfg, acc = self.cfg, self.acc
        self._call("on_start")
        bar = progress(total=self.total_steps, initial=self.global_step, disable=not acc.is_local_main_process,
                   desc=f"{self.method.name}", dynamic_ncols=True)
        window: dict[str, list[torch.Tensor]] = {}
        window_samples, window_start = 0, time.perf_counter()
        done = self.global_step >= self.total_steps
        skip_batches = self.skip_batches
        self.model.train()
        for epoch in range(self.start_epoch, cfg.optim.num_epochs):
            if done:
                break
            epoch_loader = loader_for_epoch(acc, self.loader, self.sampler, self.dataset, epoch, skip_batches)
            for i, views in enumerate(epoch_loader, start=skip_batches):
                self._call("on_batch", views)
                self._call("on_phase", "data")
                loss, parts, grad_norm = self._micro_step(views, epoch)
                for k, v in {"total": loss.detach(), **parts}.items():
                    window.setdefault(k, []).append(v)
                window_samples += next(iter(views.values()))["input_ids"].shape[0]
                if not acc.sync_gradients:
                    continue
                lr = self.scheduler.get_last_lr()[0]
                advance_schedule(self.scheduler, cfg, acc.num_processes)
                self.global_step += 1
                means = {k: acc.reduce(torch.stack(v).mean(), reduction="mean").item() for k, v in window.items()}
                samples = acc.reduce(torch.tensor(float(window_samples), device=acc.device), reduction="sum").item()
                elapsed = time.perf_counter() - window_start
                row = {"step": self.global_step, "epoch": epoch, **{f"loss/{k}": v for k, v in means.items()},
                       "lr": lr, "grad_norm": None if grad_norm is None else float(grad_norm),
                       "samples_per_s": samples / elapsed}
                row.update(self._call("on_step", row))
                if acc.is_main_process:
                    append_jsonl(self.log_path, [row])
                if cfg.tracking.report_to != "none":
                    acc.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=self.global_step)
                bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
                bar.update(1)
                window, window_samples = {}, 0
                if self._improves(row.get(cfg.tracking.save_best)):
                    self.best = {"key": cfg.tracking.save_best, "value": row[cfg.tracking.save_best], "step": self.global_step}
                    _checkpoint(acc, self.model, self.optimizer, self.scheduler, cfg, self.save_dir, self.global_step,
                                epoch, i + 1, self.last_ckpt, best=self.best, as_best=True)
                if cfg.tracking.save_steps and self.global_step % cfg.tracking.save_steps == 0:
                    self.last_ckpt = _checkpoint(acc, self.model, self.optimizer, self.scheduler, cfg, self.save_dir,
                                                 self.global_step, epoch, i + 1, self.last_ckpt, best=self.best)
                self._call("on_phase", "logging")
                window_start = time.perf_counter()
                if self.global_step >= self.total_steps:
                    done = True
                    break
            skip_batches = 0
        bar.close()
        return self

    def _improves(self, value) -> bool:
        """Whether a logged value of save_best beats the best so far. Logged values are reduced over the
        processes, so every process decides alike."""
        if not self.cfg.tracking.save_best or value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best["value"] if self.cfg.tracking.save_best_mode == "min" else value > self.best["value"]

    def finish(self) -> Path:
        acc = self.acc
        acc.wait_for_everyone()
        if self.cfg.tracking.final_adapter == "best" and self.best is not None:
            load_training_state(acc, self.model, self.optimizer, self.save_dir / BEST_DIR)
        require_finite_weights(acc, self.model, f"after step {self.global_step}", self.last_ckpt)
        if self.anchor_dir is None:
            _save_final(acc, self.model, self.processor, self.cfg, self.save_dir)
        else:
            self._save_anchor_merged()
        self._call("on_end")
        if acc.is_main_process:
            rows = read_jsonl_tolerant(self.log_path)
            plot_loss_curves(rows, self.save_dir / "loss_curves.png", title=f"{self.method.name}  lr={self.cfg.optim.lr}")
            atomic_write_json(self.save_dir / "run_complete.json",
                              {"global_step": self.global_step, "method": self.method.name, "best": self.best,
                               "final_adapter": self.cfg.tracking.final_adapter if self.best is not None else "last"})
        if self.cfg.tracking.report_to != "none":
            acc.end_training()
        return self.save_dir

    def _save_anchor_merged(self) -> None:
        """SMFA: the forgetting adapter in its own folder, then the masked merge of it and the anchor as
        the run's model (a full model folder)."""
        acc, cfg = self.acc, self.cfg
        _save_final(acc, self.model, self.processor, cfg, self.save_dir / FORGET_ADAPTER_DIR)
        args = self.method.resolve_args(dict(cfg.method.method_args or {}))
        merged, counts = masked_merge(acc.unwrap_model(self.model), self.anchor_dir, float(args["k"]), self.family)
        if acc.is_main_process:
            merged.save_pretrained(self.save_dir, safe_serialization=True)
            self.processor.save_pretrained(self.save_dir)
            _write_provenance(cfg, self.save_dir)
            atomic_write_json(self.save_dir / SUMMARY_FILE, {
                "restriction": "anchor_mask", "target": "weights", "k": float(args["k"]),
                "selected": {part: {"chosen": a, "of": b} for part, (a, b) in sorted(counts.items())}})
        acc.wait_for_everyone()

    def run(self) -> Path:
        return self.setup().train().finish()


def run_training(cfg, records: list | None = None, hooks=()) -> Path:
    """Train as `cfg` says and save to cfg.tracking.save_dir. Returns the save folder. `records`: the data files'
    records when the caller has read them already (load_records_first); `hooks`: TrainHooks."""
    from safeeraser.train.in_training_eval import hooks_for

    return Trainer(cfg, records, hooks=[*hooks_for(cfg), *hooks]).run()
