"""Where a method forgets: the importance pass and the restriction it decides, run once in the training
loop's setup (after the adapter or the trainable parts are set, before the optimizer exists).

The pass reads the training data's forget and retain views in micro-batches of the items in order (each
process every P-th one), the model in eval mode on the initial weights: a resumed run, on any number of
processes, makes the same scores and so the same restriction. Its summary (how many weights or neurons each part keeps, its time and peak
memory) is written to save_dir/localization.json."""
from __future__ import annotations

import logging
import time

import torch

from safeeraser.io import atomic_write_json
from safeeraser.train.config import ConfigError
from safeeraser.train.importance import importance_for, target_of
from safeeraser.train.importance.base import ScoringPass
from safeeraser.train.restrict import WeightMask, prune_neurons, unit_rows

log = logging.getLogger(__name__)

SUMMARY_FILE = "localization.json"


def importance_name(method, args: dict) -> str:
    """The importance function a run uses: method_args.importance where the method has it, else its own."""
    return args.get("importance") or method.importance


def check_localized(method, args: dict, family, model_path: str, deepspeed: bool) -> None:
    """What the restriction needs of the launch and the model, checked before any model loads (the
    family's modules on an empty, meta-device copy of the model's structure). train.config.validate
    checks LoRA.r."""
    if not method.importance:
        return
    if deepspeed:
        raise ConfigError(f"'{method.name}' restricts weights through tensor hooks on the parameters, which "
                          "DeepSpeed's partitioned parameters do not run alike: launch it with a plain "
                          "multi-GPU (DDP) accelerate config")
    if target_of(importance_name(method, args)) == "neurons":
        parts = set(family.mlp_neurons(meta_model(model_path).named_modules()).values())
        missing = {"vision", "language"} - parts
        if missing:
            raise ConfigError(f"key 'forget_loss': '{method.name}' scores the MLP neurons of the vision tower and "
                              f"of the language model, but {model_path} ({family.model_type}) has no MLP linear "
                              f"layer in its {' or '.join(sorted(missing))} part")


def meta_model(model_path: str) -> torch.nn.Module:
    """The model's module tree with no weights (meta device): its names, without loading it."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(str(model_path)))


def _share(dataset, acc, batch_size: int, collate):
    """This process's micro-batches: the data's micro-batches in order (items 0..B-1, B..2B-1, ...), every
    P-th one from this process's index. The micro-batches are the same whatever the number of processes,
    so are the sums over them (up to float order), so is the restriction (a run resumed on another number
    of processes restricts the same weights)."""
    from torch.utils.data import DataLoader

    from safeeraser.data.encode import batch_to

    starts = range(0, len(dataset), batch_size)
    mine = [list(range(s, min(s + batch_size, len(dataset)))) for s in starts][acc.process_index::acc.num_processes]
    loader = DataLoader(dataset, batch_sampler=mine, collate_fn=collate)
    return lambda: ({v: batch_to(b, acc.device) for v, b in views.items()} for views in loader)


def _parts(model, family, chosen: dict, target: str) -> dict:
    """Per part, [selected, total] weights or neurons."""
    out: dict[str, list[int]] = {}
    if target == "weights":
        for n, keep in chosen.items():
            row = out.setdefault(family.part_of(n), [0, 0])
            row[0] += int(keep.sum())
            row[1] += keep.numel()
        return out
    modules = dict(model.named_modules())
    if target == "units":
        widths = {mlp: (part, modules[o].in_features) for mlp, (part, o, _) in family.mlp_units(modules.items()).items()}
    else:
        widths = {n: (part, modules[n].out_features) for n, part in family.mlp_neurons(modules.items()).items()}
    for n, (part, width) in widths.items():
        row = out.setdefault(part, [0, 0])
        row[0] += int(chosen[n].numel()) if n in chosen else 0
        row[1] += width
    return out


def localize(model, method, args: dict, cfg, dataset, collate, acc, family, pad_id: int, save_dir) -> WeightMask | None:
    """Run the method's importance pass and apply its restriction to `model`: returns the weight mask
    training must respect (None when nothing is masked)."""
    name = importance_name(method, args)
    importance, target = importance_for(name), target_of(name)
    model.to(acc.device)
    dataset.set_epoch(0)
    scoring = ScoringPass(model, _share(dataset, acc, cfg.optim.batch_size, collate), method, args, cfg, pad_id,
                          family, total=lambda t: acc.reduce(t, reduction="sum"), autocast=acc.autocast)
    cuda = acc.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(acc.device)
    start, was_training = time.perf_counter(), model.training
    model.eval()  # no dropout: the scores depend on the weights and the data alone
    chosen = importance.select(importance.score(scoring), scoring)
    model.train(was_training)
    seconds = time.perf_counter() - start
    parts = _parts(model, family, chosen, target)
    if method.restriction == "prune":
        params = dict(model.named_parameters())
        keep = {n: m for n, m in prune_neurons(model, chosen).items() if params[n].requires_grad}
    elif method.restriction == "units":
        if not chosen:
            raise ConfigError(f"'{method.name}' found no MLP unit to edit: no MLP of the tuned parts comes before "
                              "the layer its loss reads (method_args.layer); tune the language model or the "
                              "vision tower, or read a later layer")
        keep = unit_rows(model, family.mlp_units(model.named_modules()), chosen)
    else:
        keep = chosen
    if acc.is_main_process:
        atomic_write_json(save_dir / SUMMARY_FILE, {
            "importance": importance.name, "restriction": method.restriction, "target": target,
            "selected": {part: {"chosen": a, "of": b} for part, (a, b) in sorted(parts.items())},
            "seconds": round(seconds, 3), "items": len(dataset),
            # the pruned neurons themselves (a few per layer); a weight mask is as large as the weights
            "neurons": {n: rows.tolist() for n, rows in chosen.items()} if target in ("neurons", "units") else None,
            "peak_gpu_bytes": torch.cuda.max_memory_allocated(acc.device) if cuda else None})
    what = {"weights": "weights may change", "neurons": "neurons pruned", "units": "units train"}[target]
    acc.print(f"{importance.name} importance ({seconds:.1f} s): " + ", ".join(
        f"{part} {a}/{b} {what}" for part, (a, b) in sorted(parts.items())))
    return WeightMask(model, keep) if keep else None
