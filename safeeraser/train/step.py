"""One training step's loss: forward the views (fused into one pass), then the method's terms.

Logits are made only for the positions the loss reads (from the first answer token on).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from safeeraser.data.encode import IGNORE_INDEX, model_inputs
from safeeraser.models.scoring import answer_window
from safeeraser.train.config import ConfigError
from safeeraser.train.methods.base import Method
from safeeraser.train.methods.terms import KINDS, kl_positions


@dataclass
class ViewOutput:
    logits: torch.Tensor
    labels: torch.Tensor
    ref_logits: torch.Tensor | None = None
    # A language-model layer's activations (B, T, H), the mask of real tokens and the mask of the real
    # tokens after the image (the question, the template's turn markers and the answer), for kinds that
    # read them
    hidden: torch.Tensor | None = None
    ref_hidden: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None


def _pad_to(t: torch.Tensor, width: int, value) -> torch.Tensor:
    return F.pad(t, (0, width - t.shape[1]), value=value) if t.shape[1] < width else t


def widen(batch: dict, width: int, pad_id: int) -> dict:
    """A right-padded batch padded further to `width` columns (its image inputs unchanged)."""
    out = dict(batch)
    for key, value in (("input_ids", pad_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
        out[key] = _pad_to(batch[key], width, value)
    out["tokens"] = {k: _pad_to(v, width, 0) for k, v in batch["tokens"].items()}
    return out


def fuse(views: dict[str, dict], names: list[str], pad_id: int, family) -> tuple[dict, dict[str, slice]]:
    """Concatenate right-padded view batches into one batch; return it and each view's rows."""
    width = max(views[n]["input_ids"].shape[1] for n in names)
    wide = [widen(views[n], width, pad_id) for n in names]
    fused = {key: torch.cat([w[key] for w in wide]) for key in ("input_ids", "attention_mask", "labels")}
    fused["tokens"] = {k: torch.cat([w["tokens"][k] for w in wide]) for k in wide[0]["tokens"]}
    fused["images"] = family.collate_images([w["images"] for w in wide])
    slices, start = {}, 0
    for n in names:
        rows = views[n]["input_ids"].shape[0]
        slices[n] = slice(start, start + rows)
        start += rows
    return fused, slices


def _by_view(t: torch.Tensor, rows_of: dict[str, slice]) -> dict[str, torch.Tensor]:
    """Each view's rows of a pass's output (the views' row blocks follow each other, as `fuse` lays them
    out). Split, not indexed: indexing's backward writes every view's gradient into a zero tensor the size
    of the whole pass's logits; split's backward places each once. The values are the same."""
    if list(rows_of.values()) == [slice(None)]:
        return {n: t for n in rows_of}
    sizes = [rows.stop - rows.start for rows in rows_of.values()]
    return dict(zip(rows_of, t.split(sizes)))


def _first_columns(t: torch.Tensor, width: int) -> torch.Tensor:
    return t if t.shape[1] == width else t[:, :width]


def _forward(model, batch: dict, keep: int = 0, layer: torch.nn.Module | None = None, legacy_pads: bool = False):
    """(logits of the last `keep` positions (all when 0), the output of decoder layer module `layer` or
    None): the lm_head and everything after it (float copies, softmaxes, their gradients) never touch
    prompt and image positions the loss does not read. `legacy_pads`: padding positions get position id 1
    (see legacy_padding)."""
    if keep:  # as indices, so the kept hidden states are gathered into one contiguous matrix for the output layer
        width = batch["input_ids"].shape[1]
        keep = torch.arange(width - keep, width, device=batch["input_ids"].device)
    extra = {}
    if legacy_pads:
        mask = batch["attention_mask"]
        extra["position_ids"] = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    captured = []
    # The layer module's own output, as RMU's hook reads it (hidden_states[-1] would be after the final norm)
    handle = None if layer is None else layer.register_forward_hook(
        lambda module, args, output: captured.append(output[0] if isinstance(output, tuple) else output))
    try:
        out = model(**model_inputs(batch), **extra, use_cache=False, logits_to_keep=keep)
    finally:
        if handle is not None:
            handle.remove()
    return out.logits, captured[-1] if captured else None


@contextlib.contextmanager
def legacy_padding(model, pad_id: int):
    """Padding as transformers 4's LLaVA image merge (the reference's stack) leaves it: the input
    embedding of every pad token is zero (and _forward gives it position id 1). Real tokens never see
    either (padding comes after them and is masked); only a loss over padding positions, the reference's
    KL, reads what they change."""
    inner = getattr(model, "module", model)
    embed = inner.get_input_embeddings()

    def zero_pads(module, args, output):
        return output.masked_fill((args[0] == pad_id).unsqueeze(-1), 0)

    handle = embed.register_forward_hook(zero_pads)
    try:
        yield
    finally:
        handle.remove()


def decoder_layers(model, family) -> torch.nn.ModuleList:
    """The language model's decoder layers (under PEFT, DDP or DeepSpeed wrappers)."""
    inner = getattr(model, "module", model)
    base = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
    return base.get_submodule(f"{family.language}.layers")


def default_hidden_layer(depth: int) -> int:
    """RMU's layer by default: WMDP's layer_id 7 of Zephyr-7B's 32, i.e. the last of the first quarter."""
    return max(0, depth // 4 - 1)


def hidden_layer(model, args: dict, family) -> torch.nn.Module:
    """The decoder layer whose output the hidden-state kinds read: `method_args.layer` indexes the language
    model's layers from 0, as WMDP's `model.layers[layer_id]` does (default: default_hidden_layer)."""
    layers = decoder_layers(model, family)
    depth = len(layers)
    layer = args.get("layer")
    layer = default_hidden_layer(depth) if layer is None else int(layer)
    if not 0 <= layer < depth:
        raise ConfigError(f"key 'method_args.layer': {layer}, but the language model's layers are 0..{depth - 1} "
                          "(counted from 0, as WMDP's layer_id)")
    return layers[layer]


def text_after_image(batch: dict, image_token_id: int | None) -> torch.Tensor:
    """The real tokens after the last image token of each row: the question, the template's markers and
    the answer (every family's prompt puts the image first); every real token where there is no image."""
    ids, real = batch["input_ids"], batch["attention_mask"].bool()
    if image_token_id is None:
        return real
    position = torch.arange(ids.shape[1], device=ids.device)
    after = ((ids == image_token_id) * (position + 1)).amax(1)  # one past the last image token, 0 if none
    return real & (position[None] >= after[:, None])


def image_token_id(model) -> int | None:
    inner = getattr(model, "module", model)
    return getattr(inner.config, "image_token_id", None)


def reference_context(model):
    """The frozen reference is the base model with the LoRA adapter disabled: no second copy."""
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrap the PeftModel
    if hasattr(inner, "disable_adapter"):
        return adapters_off(inner)
    raise RuntimeError("this method needs a frozen reference: use LoRA (LoRA.r > 0) or pass ref_model")


@contextlib.contextmanager
def adapters_off(model):
    """The PEFT model's adapters switched off, each layer's switch put back as it was on exit: what
    PEFT's `disable_adapter()` does to every adapter layer and `modules_to_save` copy, without the survey
    of all modules and parameters it runs on every entry (`get_model_status`: 5 ms a micro-batch on the
    tiny model, a sixth of a klpd step there)."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    layers = [m for m in model.modules() if isinstance(m, (BaseTunerLayer, AuxiliaryTrainingWrapper))]
    was_off = [m.disable_adapters for m in layers]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield
    finally:
        for m, off in zip(layers, was_off):
            m.enable_adapters(not off)


def compute_loss(model, views: dict[str, dict], method: Method, cfg, pad_id: int, family, ref_model=None,
                 epoch: int = 0):
    """Return (total loss, {term name: detached value}) for one micro-batch of epoch `epoch` (counted
    from 0; terms of another phase than the epoch's are left out, with their views)."""
    args = method.resolve_args(dict(cfg.method.get("method_args") or {}))
    method = method.in_epoch(epoch, args)
    names = method.views()
    hidden_views = set(method.hidden_views())
    layer = hidden_layer(model, args, family) if hidden_views else None
    # Every term reads answer positions only, except a KL over all positions: then the logits are kept
    # whole and trimmed to each view's width; or, for the reference's KL, kept at the micro-batch's common
    # width (the reference's collator pads every view to it), padding treated as its stack treats it.
    where_kl = kl_positions(cfg)
    whole = where_kl == "reference"
    windowed = cfg.optim.answer_logits_only and where_kl == "answer"
    if whole:
        if not family.token_positions:
            raise ConfigError(f"key 'kl_positions': 'reference' gives padding position id 1, as LLaVA's "
                              f"transformers-4 image merge does; '{family.model_type}' computes its own "
                              "multi-axis positions: use kl_positions=all")
        common = max(views[n]["input_ids"].shape[1] for n in names)
        views = {n: widen(views[n], common, pad_id) for n in names}
    if cfg.optim.fused_forward and len(names) > 1:
        fused, slices = fuse(views, names, pad_id, family)
        passes = [(fused, slices)]
    else:
        passes = [(views[n], {n: slice(None)}) for n in names]
    pads = (lambda: legacy_padding(model, pad_id)) if whole else contextlib.nullcontext
    outputs: dict[str, ViewOutput] = {}
    where: dict[str, tuple[int, int]] = {}  # view -> (its pass's width, the window)
    for batch, rows_of in passes:
        keep = answer_window(batch["labels"]) if windowed else 0
        wants_hidden = bool(hidden_views & set(rows_of))
        with pads():
            logits, hidden = _forward(model, batch, keep, layer if wants_hidden else None, legacy_pads=whole)
        logits_of = _by_view(logits, rows_of)
        hidden_of = _by_view(hidden, rows_of) if hidden is not None else {}
        width = batch["input_ids"].shape[1]
        for n, rows in rows_of.items():
            w = views[n]["input_ids"].shape[1]
            if keep:  # right-padded columns of a narrower view carry IGNORE_INDEX labels: they add nothing
                outputs[n] = ViewOutput(logits_of[n], batch["labels"][rows, -keep:])
            else:  # trim each view back to its own width so per-view padding is what a separate pass sees
                outputs[n] = ViewOutput(_first_columns(logits_of[n], w), views[n]["labels"])
            if n in hidden_views:
                outputs[n].hidden, outputs[n].mask = _first_columns(hidden_of[n], w), views[n]["attention_mask"]
                outputs[n].text_mask = text_after_image(views[n], image_token_id(model))
            where[n] = (width, keep)
    ref_names = method.reference_views()
    if ref_names:
        net = ref_model if ref_model is not None else model
        ctx = contextlib.nullcontext() if ref_model is not None else reference_context(model)
        ref_pads = legacy_padding(net, pad_id) if whole else contextlib.nullcontext()
        ref_layer = layer if net is model or layer is None else hidden_layer(net, args, family)
        with torch.no_grad(), ctx, ref_pads:
            for n in ref_names:  # the reference sees exactly the rows, width and window of the view's logits
                width, keep = where[n]
                w = views[n]["input_ids"].shape[1]
                ref, ref_hidden = _forward(net, widen(views[n], width, pad_id), keep,
                                           ref_layer if n in hidden_views else None, legacy_pads=whole)
                outputs[n].ref_logits = ref if keep else ref[:, :w]
                if ref_hidden is not None:
                    outputs[n].ref_hidden = ref_hidden[:, :w]
    total = 0.0
    parts = {}
    for term in method.terms:
        value = KINDS[term.kind](outputs, term, cfg, args)
        total = total + term.weight * value
        parts[term.name] = value.detach()
    return total, parts
