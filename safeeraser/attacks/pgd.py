"""pgd: the harmful image's pixels moved, each by at most `eps` (L-infinity, pixels in [0, 1]), in the
direction that makes the unlearned model more likely to give the harmful answers; then its answers to the
perturbed image. Projected gradient descent (Madry et al. 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks", arXiv 1706.06083), aimed at a vision-language model's answers as in Qi et al. 2024
("Visual Adversarial Examples Jailbreak Aligned Large Language Models", arXiv 2306.13213):
  image      one perturbation per image, fitted to the harmful answers of the records that show it
  universal  one perturbation for every image (Moosavi-Dezfooli et al. 2017, arXiv 1610.08401): a
             `size` x `size` pattern resized (bilinear) to each image, fitted on one record in `every`
The gradient reaches the pixels through the family's own image processor (transformers' torch image
processors are differentiable), so any family is attacked on the image the user would send, not on its
resized, normalised tensor. Each step: delta <- clip(delta - alpha * sign(grad of the harmful answers'
mean token NLL), -eps, eps), the image kept in [0, 1]; the start is the clean image (no random start:
the same images on every run); the kept perturbation is the step with the lowest loss (the clean image
when none improves on it). The perturbed images are saved as 8-bit PNGs, the perturbation rounded to the
pixel grid without leaving the eps ball. Options (--option KEY=VALUE): eps (8/255), alpha (1/255), steps
(20), every (1, universal), size (224, universal). Cost per image: `steps` forward and backward passes and
one forward (the bench states it for a 7B model)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from safeeraser.attacks.base import Attack, is_count, is_number
from safeeraser.io import atomic_write_json, read_json_records
from safeeraser.models.families import family_of_model
from safeeraser.progress import progress
from safeeraser.provenance import digest, weights_identity


class PGD(Attack):
    name = "pgd"
    variants = ("image", "universal")
    paper = ("Madry et al. 2018 (arXiv 1706.06083); Qi et al. 2024 (arXiv 2306.13213); universal: "
             "Moosavi-Dezfooli et al. 2017 (arXiv 1610.08401)")
    options = {"eps": 8 / 255, "alpha": 1 / 255, "steps": 20, "every": 1, "size": 224}

    def option_problem(self, key, value):
        if key == "eps":
            return None if is_number(value) and 0 <= value <= 1 else "a number in [0, 1] (pixels in [0, 1])"
        if key == "alpha":
            return None if is_number(value) and 0 < value <= 1 else "a number in (0, 1]"
        return None if is_count(value) else "an integer >= 1"

    def prepare(self, variant, settings, work: Path, options: dict, forget_file: Path | None = None):
        opts = options  # checked by run_attack (check_options' output, defaults filled)
        records = read_json_records(settings.eval_file)  # the attacked file: image paths absolute
        # named by what the images depend on: other options, another checkpoint or other records (images,
        # harmful answers) never reuse them
        key = digest({"options": opts, "model": settings.model_path, "variant": variant,
                      "checkpoint": weights_identity(settings.checkpoint_path),
                      "records": [[r["image_path"], r["unsafe_pairs"]] for r in records]})[:12]
        folder = work / "images" / f"pgd-{variant}-{key}"
        paths = sorted({r["image_path"] for r in records})
        # under the original's folder name: the category the judge reads from it stays the same
        out = {path: folder / Path(path).parent.name / f"{i:05d}.png" for i, path in enumerate(paths)}
        if not all(p.exists() for p in out.values()):
            perturb(settings, records, variant, opts, out)
        attacked = [dict(r, image_path=str(out[r["image_path"]])) for r in records]
        attacked_file = work / f"{variant}_pgd_{key}.json"
        atomic_write_json(attacked_file, attacked)
        return dataclasses.replace(settings, eval_file=str(attacked_file))


class Objective:
    """The harmful answers' mean token NLL on an image, as a function of the image's pixels."""

    def __init__(self, model, processor):
        from safeeraser.data.encode import PromptEncoder, pad_token_id

        self.model, self.processor = model, processor
        self.family = family_of_model(model)
        self.encoder = PromptEncoder(processor, self.family)
        self.pad_id = pad_token_id(processor.tokenizer)
        self.device = next(model.parameters()).device
        self.dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype

    def examples(self, records: list[dict]):
        """The (image, harmful question, harmful answer) examples of records sharing one image, encoded."""
        return [self.encoder.encode(r["image_path"], pair["question"], pair["model_response"])
                for r in records for pair in r["unsafe_pairs"]]

    def image_inputs(self, pixels, like: dict) -> dict:
        """The processor's image inputs of `pixels` ((3, H, W) in [0, 1]), differentiable, with the keys the
        processor's own call gives (`like`: an encoded example's)."""
        made = self.processor.image_processor(images=[pixels * 255], return_tensors="pt",
                                              input_data_format="channels_first")
        out = {}
        for name, value in like.items():
            value = made[name].to(self.device)
            out[name] = value.to(self.dtype) if value.is_floating_point() else value
            if tuple(value.shape) != tuple(like[name].shape):
                raise RuntimeError(f"pgd: the image processor gave '{name}' of shape {tuple(value.shape)} for "
                                   f"the tensor image, {tuple(like[name].shape)} for the file")
        return out

    def loss(self, pixels, encoded: list):
        from safeeraser.data.encode import batch_to, model_inputs, pad_batch
        from safeeraser.models.scoring import answer_window
        from safeeraser.train.methods.terms import per_example_nll

        images = self.image_inputs(pixels, encoded[0].images)
        texts = [dataclasses.replace(e, images={}) for e in encoded]  # the image inputs are `images`, below
        batch = batch_to(pad_batch(texts, self.pad_id, self.family), self.device)
        batch["images"] = self.family.collate_images([images] * len(encoded))
        keep = answer_window(batch["labels"])
        logits = self.model(**model_inputs(batch), use_cache=False, logits_to_keep=keep).logits
        return per_example_nll(logits, batch["labels"][:, -keep:]).mean()


def read_pixels(path):
    """An image file as a (3, H, W) float tensor in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def save_pixels(clean, delta, eps: float, path: Path) -> None:
    """clean + delta as an 8-bit PNG, written whole or not at all: delta rounded to the pixel grid and
    kept in the eps ball (clean is on the grid already, as read from an 8-bit file)."""
    import torch
    from PIL import Image

    bound = math.floor(eps * 255 + 1e-6)
    step = torch.round(delta.detach().float() * 255).clamp(-bound, bound)
    pixels = (torch.round(clean * 255) + step).clamp(0, 255).to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy()).save(tmp)
    tmp.replace(path)


def descend(objective, cleans: list, encoded: list, delta_of, param, opts: dict):
    """PGD on `param`, the perturbation's parameters: `delta_of(param, clean)` is one image's perturbation,
    the loss summed over the images (their gradients added one image at a time: one image's graph held at
    once). Returns the parameters with the lowest loss seen."""
    import torch

    best, best_loss = param.detach().clone(), math.inf
    for step in range(opts["steps"] + 1):  # the last iterate's loss is seen too
        total, grad, last = 0.0, torch.zeros_like(param), step == opts["steps"]
        for clean, examples in zip(cleans, encoded, strict=True):
            leaf = param.detach().requires_grad_(not last)
            with torch.set_grad_enabled(not last):  # the last iterate is only scored: no backward
                loss = objective.loss((clean + delta_of(leaf, clean)).clamp(0, 1), examples)
            if not last:
                grad += torch.autograd.grad(loss, leaf)[0]
            total += loss.item()
        if total < best_loss:
            best, best_loss = param.detach().clone(), total
        if last:
            break
        param = (param - opts["alpha"] * grad.sign()).clamp(-opts["eps"], opts["eps"])
    return best


def perturb(settings, records: list[dict], variant: str, opts: dict, out: dict) -> None:
    """Write the perturbed image of each of the records' images to `out[its path]`."""
    import torch
    import torch.nn.functional as F

    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.models.loading import load_processor

    model = load_for_generation(settings.model_path, settings.checkpoint_path, settings.dtype)
    model.eval().requires_grad_(False)  # gradients reach the pixels only
    objective = Objective(model, load_processor(settings.model_path))
    by_image: dict[str, list[dict]] = {}
    for r in records:
        by_image.setdefault(r["image_path"], []).append(r)
    device = objective.device
    if variant == "universal":
        def resized(pattern, clean):
            return F.interpolate(pattern[None], size=clean.shape[-2:], mode="bilinear", align_corners=False)[0]

        fit = [path for i, path in enumerate(by_image) if i % opts["every"] == 0]
        cleans = [read_pixels(p).to(device) for p in fit]
        encoded = [objective.examples(by_image[p]) for p in fit]
        pattern = torch.zeros(3, opts["size"], opts["size"], device=device)
        pattern = descend(objective, cleans, encoded, resized, pattern, opts)
        for path in progress(iterable=list(by_image), desc="pgd universal: images", unit="image"):
            clean = read_pixels(path).to(device)
            save_pixels(clean, resized(pattern, clean), opts["eps"], out[path])
        return
    for path in progress(iterable=list(by_image), desc="pgd: images", unit="image"):
        if out[path].exists():
            continue  # made before an interruption
        clean = read_pixels(path).to(device)
        delta = descend(objective, [clean], [objective.examples(by_image[path])], lambda d, _: d,
                        torch.zeros_like(clean), opts)
        save_pixels(clean, delta, opts["eps"], out[path])



ATTACK = PGD()
