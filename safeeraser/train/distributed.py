"""Launch-time glue for multi-process runs: the CPU process-group backend, one source of truth for
the values a launch config could also set, DeepSpeed "auto" sizes, and gathering a DeepSpeed adapter."""
from __future__ import annotations

import os

import torch

from safeeraser.train.config import ConfigError


def deepspeed_adapter_state(acc, model) -> dict[str, torch.Tensor]:
    """The trainable weights of a DeepSpeed run as one process would hold them: each one's fp32 master
    copy, assembled from the ZeRO partitions (ZeRO-3 shards the weights themselves, ZeRO-1/2 the
    master copies). Every rank must call this: the gathers are collective."""
    from deepspeed import zero
    from deepspeed.utils import safe_get_full_fp32_param

    state = {}
    for name, p in acc.unwrap_model(model).named_parameters():
        if not p.requires_grad:
            continue  # frozen base weights: not part of the adapter
        full = safe_get_full_fp32_param(p)
        if full is None:  # trainable but outside the optimizer: gather the (possibly sharded) weight itself
            with zero.GatheredParameters([p], modifier_rank=None):
                full = p.detach().clone()
        state[name] = full.detach().float().cpu()
    return state


def _has_accelerator() -> bool:
    accel = getattr(torch, "accelerator", None)
    if accel is not None and hasattr(accel, "is_available"):
        return accel.is_available()
    return torch.cuda.is_available()


def accelerator_kwargs() -> dict:
    """Accelerator arguments for a multi-process launch on a machine without a GPU (the CPU tests,
    CPU-only nodes). accelerate picks the process-group backend from the device it finds: with none, a
    process started by torchrun would fall back to single-process mode (every process training alone
    on the whole data set), and DeepSpeed's process group would get no backend. Name the CPU paths of
    the same engines instead: accelerate's MULTI_CPU (gloo) and DeepSpeed's CPU-accelerator backend."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _has_accelerator():
        return {}
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        from accelerate.utils import InitProcessGroupKwargs
        from deepspeed.accelerator import get_accelerator

        return {"kwargs_handlers": [InitProcessGroupKwargs(backend=get_accelerator().communication_backend_name())]}
    return {"cpu": True}


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sync_engine_config(acc, cfg, model_dtype: torch.dtype) -> None:
    """Make the training config the only source of what the launch config could also say.

    accelerate takes gradient_accumulation_steps from ACCELERATE_GRADIENT_ACCUMULATION_STEPS (set by an
    accelerate YAML that names it) over the Accelerator's argument, and prefers a number in a DeepSpeed
    JSON over both; it fills a DeepSpeed "auto" gradient_clipping with 1.0. Here "auto" (or no key)
    takes the training config's value, an agreeing number is accepted, a disagreeing one is an error."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and acc.num_processes != world:
        raise RuntimeError(
            f"launched as {world} processes but accelerate set up {acc.num_processes}: every process would train "
            "alone on the whole data set. Use a multi-process accelerate config (config/accelerate/).")
    gas = cfg.optim.gradient_accumulation_steps
    if acc.gradient_accumulation_steps != gas:
        raise ConfigError(
            f"key 'gradient_accumulation_steps': {gas} in the training config but {acc.gradient_accumulation_steps} "
            "in the accelerate launch config; remove it from the accelerate config (the training config is its only "
            "source)")
    plugin = acc.state.deepspeed_plugin
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    wanted = {
        "gradient_accumulation_steps": gas,
        "gradient_clipping": float(cfg.optim.max_grad_norm),
        "train_micro_batch_size_per_gpu": cfg.optim.batch_size,
        "train_batch_size": cfg.optim.batch_size * gas * acc.num_processes,
    }
    for key, want in wanted.items():
        have = ds.get(key, "auto")
        if have == "auto":
            ds[key] = want
        elif not _numeric(have) or float(have) != float(want):
            training_key = {"gradient_clipping": "max_grad_norm", "train_micro_batch_size_per_gpu": "batch_size",
                            "train_batch_size": "batch_size x gradient_accumulation_steps x processes"}.get(key, key)
            raise ConfigError(
                f"the DeepSpeed config sets {key}={have} but the training config implies {want} ({training_key}); "
                f'set it to "auto" in the DeepSpeed JSON so that the training config is its only source'
                + (" (a DeepSpeed JSON without the key counts as 1)" if key == "gradient_accumulation_steps" else ""))
    half = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(model_dtype)
    if half and str(ds.get(half, {}).get("enabled", False)).lower() != "true":
        raise ConfigError(
            f"key 'model_dtype': the model loads in {half} but DeepSpeed runs without {half} mixed precision; launch "
            f"with --mixed_precision {half} (or set mixed_precision={half}, or model_dtype=float32)")


def fill_size_autos(acc, model) -> None:
    """DeepSpeed "auto" bucket sizes, as accelerate derives them from config.hidden_size. A LLaVA config
    keeps hidden_size in its text_config, where accelerate does not look: read it there."""
    plugin = acc.state.deepspeed_plugin
    if plugin is None:
        return
    config = model.config
    hidden = getattr(config, "hidden_size", None)
    if hidden is None and hasattr(config, "get_text_config"):
        hidden = getattr(config.get_text_config(), "hidden_size", None)
    if hidden is None:
        return  # accelerate names the keys to set by hand
    sizes = {"reduce_bucket_size": hidden * hidden, "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
             "stage3_param_persistence_threshold": 10 * hidden}
    zero = plugin.deepspeed_config.get("zero_optimization", {})
    for key, value in sizes.items():
        if zero.get(key) == "auto":
            zero[key] = value


def uneven_batches_note(n: int, batch_size: int, processes: int) -> str | None:
    """accelerate gives every process the same number of batches: when the examples do not fill whole
    global batches it repeats examples from the start of the epoch in the last one, so that step's loss
    differs a little from a run with another number of processes (one process has a short last batch)."""
    per_pass = batch_size * processes
    extra = (-n) % per_pass
    if processes <= 1 or not extra:
        return None
    return (f"{n} examples do not fill whole batches of {batch_size} x {processes} processes: accelerate repeats "
            f"{extra} of them in the last batch of every epoch; use a data set size or batch_size that divides "
            "for losses identical to a run with another number of processes")
