"""Our side of the parity check: step 0 of every reference loss in reference mode, on the parity case.

    .venv/bin/python scripts/reference_parity/run_ours.py --model TINY --work WORK --reference-dir REF [--out F]

TINY is our tiny LLaVA (the same weights the reference side loads in its own format), WORK the folder
`case.py` wrote. For each loss, with and without the perturbation, it sets up a training run from
config/forget_reference.yaml exactly as `forget.py` would, takes the first micro-batch and computes the
step-0 loss and its terms with the training loop's own function. The CI test (tests/train/
test_reference_parity.py) calls `step0` and compares it with the reference's recorded values.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LOSSES = ("ga", "gd", "kl", "idk", "gapd", "gdpd", "klpd", "idkpd")
# Our term names for what the reference logs per forward pass (PO's pooled pass is one term of ours)
TERM_OF = {"forget": "forget", "retain": "retain", "pd": "pd", "pooled": "idk_retain", "kl": "kl"}


def _collapse_image(ids: list[int], image_id: int) -> list[int]:
    """Token ids with each run of image tokens as one: the reference's text before its model expands it."""
    out = []
    for t in ids:
        if t == image_id and out and out[-1] == image_id:
            continue
        out.append(t)
    return out


def _view_rows(batch: dict, image_id: int) -> dict:
    ids = batch["input_ids"][0].tolist()
    labels = batch["labels"][0].tolist()
    mask = batch["attention_mask"][0].tolist()
    keep = [i for i in range(len(ids)) if not (ids[i] == image_id and i and ids[i - 1] == image_id)]
    return {"input_ids": _collapse_image(ids, image_id), "labels": [labels[i] for i in keep],
            "attention_mask": [mask[i] for i in keep]}


def step0(model: str, work: Path, reference_dir: str, loss: str, perturbed: bool, data: str = "all_train.json"):
    """(total, {term: value}, {view: ids/labels/mask}, lr) of step 0 in reference mode."""
    import torch

    from perturb import perturb
    from safeeraser.train import step as train_step
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import Trainer

    # In the case's folder, as the reference runs: its image paths are relative to it
    with tempfile.TemporaryDirectory() as save, contextlib.chdir(work):
        overrides = [f"model_path={model}", f"data_path={work / 'dataset' / data}",
                     f"idk_path={work / 'dataset' / 'prompt.json'}", f"reference_dir={reference_dir}",
                     f"forget_loss={loss}", "batch_size=1", "gradient_accumulation_steps=1", "num_epochs=1",
                     f"save_dir={save}", "model_dtype=float32", "gradient_checkpointing=false"]
        if perturbed:
            overrides.append("LoRA.dropout=0")
        cfg = load_config("forget_reference.yaml", overrides)
        trainer = Trainer(cfg).setup()
        touched = perturb(trainer.model) if perturbed else None
        trainer.model.train()
        views = next(iter(trainer.loader))
        with torch.no_grad():
            total, parts = train_step.compute_loss(trainer.model, views, trainer.method, cfg, trainer.pad_id,
                                                   trainer.family, ref_model=trainer.ref_model, step=0)
        image_id = trainer.model.config.image_token_id if hasattr(trainer.model, "config") else None
        image_id = image_id or trainer.processor.tokenizer.convert_tokens_to_ids(trainer.processor.image_token)
        rows = {name: _view_rows(batch, image_id) for name, batch in views.items()}
        return {"total": float(total), "terms": {k: float(v) for k, v in parts.items()}, "batch": rows,
                "lr": trainer.optimizer.param_groups[0]["lr"], "perturbed": touched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--reference-dir", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = {}
    for loss in LOSSES:
        for perturbed in (False, True):
            key = loss + ("_perturbed" if perturbed else "")
            out[key] = step0(args.model, args.work, args.reference_dir, loss, perturbed)
            print(key, out[key]["total"], out[key]["terms"], flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
