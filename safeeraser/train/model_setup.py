"""Which parameters train: LoRA on the language model, or full fine-tuning when LoRA.r is 0."""
from __future__ import annotations

import re


def _set_trainable(model, cfg) -> None:
    for name, p in model.named_parameters():
        if "vision_tower" in name:
            p.requires_grad_(cfg.tune_vision_tower)
        elif "multi_modal_projector" in name:
            p.requires_grad_(cfg.tune_mm_projector)
        else:
            p.requires_grad_(cfg.tune_language_model)


def prepare_model(model, cfg):
    """Return the model to train. With LoRA the projector (and vision tower) are full copies in
    `modules_to_save`, so the saved adapter holds everything that changed."""
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.LoRA.r == 0:
        _set_trainable(model, cfg)
        return model
    from peft import LoraConfig, get_peft_model

    pattern = re.compile(cfg.LoRA.target_modules)
    if not any(pattern.fullmatch(n) for n, _ in model.named_modules()):
        raise ValueError(f"LoRA.target_modules '{cfg.LoRA.target_modules}' matches no module of the model")
    modules_to_save = [m for m, on in (("multi_modal_projector", cfg.tune_mm_projector),
                                       ("vision_tower", cfg.tune_vision_tower)) if on]
    lora = LoraConfig(r=cfg.LoRA.r, lora_alpha=cfg.LoRA.alpha, lora_dropout=cfg.LoRA.dropout,
                      target_modules=cfg.LoRA.target_modules, modules_to_save=modules_to_save or None,
                      bias="none")
    return get_peft_model(model, lora)


def optimizer_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups as the reference (and HF Trainer): no decay on biases and norm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
