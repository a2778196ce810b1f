"""SMFA's two adapters and their masked merge (train/methods/smfa.py).

The retain anchor is a LoRA adapter of its own, trained first by the same loop on the retain answers
alone (save_dir/anchor, reused when complete). After the forgetting adapter has trained, both are held by
the one PEFT model and, per updated weight matrix (every LoRA layer's B A scaling, every fully trained
`modules_to_save` copy minus its original), the forgetting update is dropped where it opposes the
anchor's and dominates it:

    drop = dW_f * dW_a < 0  and  |dW_f| > k * rho * |dW_a|,   rho = ||dW_f|| / ||dW_a||  (Frobenius)

and the model keeps W + dW_f * (1 - drop). A masked update is not of low rank: the run saves the merged
model as a full model folder (the forgetting adapter itself in save_dir/forget_adapter)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

ANCHOR_DIR = "anchor"
FORGET_ADAPTER_DIR = "forget_adapter"


def anchor_config(cfg):
    """The anchor's run: the same data, model and budget, its own folder, no tracking or evaluation."""
    anchor = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    anchor.tracking.save_dir = str(Path(cfg.tracking.save_dir) / ANCHOR_DIR)
    anchor.tracking.report_to, anchor.tracking.save_best, anchor.tracking.final_adapter = "none", "", "last"
    anchor.tracking.resume_from_checkpoint = None
    anchor.tracking.overwrite = True
    anchor.eval.eval_steps = 0
    return anchor


def anchor_method(method):
    """The anchor trains the method's anchor terms (SMFA: the retain NLL) and nothing else."""
    return replace(method, name=method.name + "_anchor", terms=method.anchor_terms, anchor_terms=())


def train_anchor(cfg, method, records, load_model=None) -> Path:
    """The retain anchor's adapter folder: trained now, or reused when its run completed with this run's
    settings (the loop removes run_complete.json when a run starts, so a retrain cut off is never taken
    for complete). Records or a model loader given in code are not in the settings: then it trains."""
    from safeeraser.train.loop import Trainer

    acfg = anchor_config(cfg)
    out = Path(acfg.tracking.save_dir)
    done = out / "run_complete.json"
    reusable = records is None and load_model is None and not cfg.tracking.overwrite
    if reusable and done.exists() and (out / "config.yaml").exists():
        if OmegaConf.load(out / "config.yaml") == acfg:
            return out
    return Trainer(acfg, records, method=anchor_method(method), load_model=load_model).run()


def _drop(delta_f: torch.Tensor, delta_a: torch.Tensor, k: float) -> torch.Tensor:
    rho = delta_f.norm() / delta_a.norm().clamp(min=1e-30)
    # opposed: of strictly opposite signs (where the anchor did not move, nothing opposes the forgetting)
    return (delta_f * delta_a < 0) & (delta_f.abs() > k * rho * delta_a.abs())


@torch.no_grad()
def masked_merge(peft_model, anchor_dir: Path, k: float, family) -> tuple[torch.nn.Module, dict]:
    """Load the anchor into the PEFT model beside the forgetting adapter ("default"), merge the masked
    forgetting update into the base weights, and return (the plain merged model, per part [kept, of])."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import ModulesToSaveWrapper

    peft_model.load_adapter(str(anchor_dir), adapter_name="anchor")
    counts: dict[str, list[int]] = {}

    def count(name, drop):
        row = counts.setdefault(family.part_of(name), [0, 0])
        row[0] += int((~drop).sum())
        row[1] += drop.numel()

    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            delta_f = module.get_delta_weight("default").float()
            drop = _drop(delta_f, module.get_delta_weight("anchor").float(), k)
            weight = module.get_base_layer().weight
            weight += (delta_f * ~drop).to(weight.dtype)
            count(name, drop)
        elif isinstance(module, ModulesToSaveWrapper) and "default" in module.modules_to_save:
            original = dict(module.original_module.named_parameters())
            anchor = dict(module.modules_to_save["anchor"].named_parameters())
            for pname, trained in module.modules_to_save["default"].named_parameters():
                delta_f = trained.float() - original[pname].float()
                drop = _drop(delta_f, anchor[pname].float() - original[pname].float(), k)
                # the trained copy is what unloading keeps: trained where the update is kept, else original
                trained.copy_(torch.where(drop, original[pname], trained))
                count(f"{name}.{pname}", drop)
    peft_model.delete_adapter("anchor")
    return peft_model.unload(), counts
