"""Which parameters train: LoRA on the language model, or full fine-tuning when LoRA.r is 0."""
from __future__ import annotations

import re

from safeeraser.train.config import LORA_LAYERS, ConfigError


def _set_trainable(model, cfg, family) -> None:
    m = cfg.model
    tune = {"vision": m.tune_vision_tower, "projector": m.tune_mm_projector, "language": m.tune_language_model}
    for name, p in model.named_parameters():
        p.requires_grad_(tune[family.part_of(name)])


def lora_target_modules(cfg, family) -> str:
    """LoRA.target_modules as PEFT's regex: a list of projection names is scoped by the family to its
    language model; a string is the user's own regex, used as it is."""
    targets = cfg.LoRA.target_modules
    return targets if isinstance(targets, str) else family.lora_targets(list(targets), cfg.LoRA.target_layers)


def check_lora_targets(model, cfg, family) -> None:
    """Every name in LoRA.target_modules (or the regex) must match a module of the language model:
    a misspelt name would otherwise leave that part untouched, or the adapter empty."""
    import torch

    names = [n for n, _ in model.named_modules()]
    targets = cfg.LoRA.target_modules
    wanted = [targets] if isinstance(targets, str) else list(targets)
    unmatched = []
    for target in wanted:
        pattern = re.compile(target if isinstance(targets, str) else family.lora_targets([target]))
        if not any(pattern.fullmatch(n) for n in names):
            unmatched.append(target)
    if unmatched:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                         if isinstance(m, torch.nn.Linear) and family.part_of(n) == "language"})
        raise ConfigError(f"key 'LoRA.target_modules': {', '.join(unmatched)} matches no module of the language "
                          f"model. Its linear layers are named: {', '.join(linear[:12])}")
    for layer in cfg.LoRA.target_layers or ():
        pattern = re.compile(family.lora_targets(list(wanted), [layer]))
        if not any(pattern.fullmatch(n) for n in names):
            depth = model.config.get_text_config().num_hidden_layers
            raise ConfigError(f"key 'LoRA.target_layers': layer {layer} has none of {', '.join(wanted)}; the language "
                              f"model's layers are 0..{depth - 1}")


def prepare_model(model, cfg, family):
    """Return the model to train. With LoRA the projector (and vision tower) are full copies in
    `modules_to_save`, so the saved adapter holds everything that changed."""
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.LoRA.r == 0:
        _set_trainable(model, cfg, family)
        return model
    from peft import LoraConfig, get_peft_model

    check_lora_targets(model, cfg, family)
    targets = lora_target_modules(cfg, family)
    modules_to_save = family.modules_to_save(cfg.model.tune_vision_tower, cfg.model.tune_mm_projector)
    lora = LoraConfig(r=cfg.LoRA.r, lora_alpha=cfg.LoRA.alpha, lora_dropout=cfg.LoRA.dropout,
                      target_modules=targets, modules_to_save=modules_to_save or None, bias="none")
    model = get_peft_model(model, lora)
    if lora_layers(cfg) == "fast":
        from safeeraser.train.lora_addmm import use_addmm_lora
        from safeeraser.train.lora_dropout import use_sparse_dropout

        use_addmm_lora(model)
        use_sparse_dropout(model)
    return model


def lora_layers(cfg) -> str:
    """Which LoRA layers train (`LoRA.layers`): "fast" (the default) adds each adapter's update with one
    addmm (train/lora_addmm.py: PEFT's values, bit for bit when lora_alpha / r is a power of
    two) and draws CPU dropout masks sparsely (train/lora_dropout.py: torch's distribution, other random
    numbers, so a CPU run with LoRA.dropout > 0 is not bit-identical to PEFT's); "peft": PEFT's own
    layers, bit for bit."""
    value = cfg.LoRA.layers
    if value not in LORA_LAYERS:
        raise ConfigError(f"key 'LoRA.layers': '{value}', expected one of {', '.join(LORA_LAYERS)}")
    return value


def optimizer_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups as the reference (and HF Trainer): no decay on biases and norm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
