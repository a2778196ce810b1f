"""The pgd attack: the image's pixels moved within eps to make the harmful answers more likely, through the
family's own (differentiable) image processor; the saved images on the pixel grid and inside the ball."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from safeeraser.attacks import AttackError
from safeeraser.attacks.pgd import Objective, read_pixels
from safeeraser.attacks.run import run_attack
from safeeraser.infer.settings import InferSettings

from tests.families.conftest import FAMILIES


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _nlls(model_dir, records: list[dict], image_of) -> list[float]:
    """Each harmful pair's answer NLL, its image read from the file `image_of(record)`, the usual way."""
    from safeeraser.data.encode import PromptEncoder, pad_token_id
    from safeeraser.models.families import family_of_model
    from safeeraser.models.loading import load_model, load_processor
    from safeeraser.train.evaluate import example_nlls

    model, processor = load_model(str(model_dir), "float32").eval(), load_processor(str(model_dir))
    family = family_of_model(model)
    encoder = PromptEncoder(processor, family)
    encoded = [encoder.encode(image_of(r), p["question"], p["model_response"]) for r in records for p in r["unsafe_pairs"]]
    return example_nlls(model, encoded, pad_token_id(processor.tokenizer), family).tolist()


@pytest.mark.parametrize("options, says", [({"eps": 1.5}, "option 'eps' must be a number in \\[0, 1\\]"),
                                           ({"eps": -0.1}, "option 'eps' must be a number in \\[0, 1\\]"),
                                           ({"steps": 0}, "option 'steps' must be an integer >= 1"),
                                           ({"alpha": 0}, "option 'alpha' must be a number in \\(0, 1\\]"),
                                           ({"radius": 1}, "has no option 'radius'")])
def test_bad_options_are_one_error_before_any_model_loads(two_records, tmp_path, options, says, monkeypatch):
    import safeeraser.attacks.pgd as pgd

    monkeypatch.setattr(pgd, "perturb", lambda *a: pytest.fail("a model was loaded"))
    settings = InferSettings(eval_file=str(two_records[0]), model_path="unused", output_file=str(tmp_path / "o.json"))
    with pytest.raises(AttackError, match=says):
        run_attack("pgd", "image", settings, options)


def test_pgd_raises_the_harmful_answers_likelihood_within_eps(two_records, tiny_dir, tmp_path):
    data, records = two_records
    out = tmp_path / "answers.json"
    settings = InferSettings(eval_file=str(data), model_path=str(tiny_dir), output_file=str(out), max_new_tokens=2,
                             greedy=True, dtype="float32")
    run_attack("pgd", "image", settings, {"eps": 8 / 255, "steps": 4})
    answered = json.loads(out.read_text())
    assert [r["image_path"] for r in answered] == [r["image_path"] for r in records]  # the originals' fields
    attacked = [r["attack"]["image_path"] for r in answered]
    for record, path in zip(records, attacked):
        moved = np.abs(_pixels(path) - _pixels(record["image_path"]))
        assert 0 < moved.max() <= 8  # 8/255 on the 8-bit grid
        assert Path(path).parent.name == Path(record["image_path"]).parent.name  # the category folder kept
    clean = _nlls(tiny_dir, records, lambda r: r["image_path"])
    adversarial = _nlls(tiny_dir, records, lambda r: attacked[records.index(r)])
    # every record's harmful answers more likely on its perturbed image, read back from the saved file
    first = len(records[0]["unsafe_pairs"])
    assert sum(adversarial[:first]) < sum(clean[:first]) and sum(adversarial[first:]) < sum(clean[first:])


def test_the_universal_perturbation_is_one_pattern_on_every_image(two_records, tiny_dir, tmp_path):
    data, records = two_records
    out = tmp_path / "answers.json"
    settings = InferSettings(eval_file=str(data), model_path=str(tiny_dir), output_file=str(out), max_new_tokens=2,
                             greedy=True, dtype="float32")
    # fitted on the first record only (every=2), applied to both
    run_attack("pgd", "universal", settings, {"eps": 4 / 255, "steps": 2, "every": 2, "size": 16})
    attacked = [r["attack"]["image_path"] for r in json.loads(out.read_text())]
    deltas = [_pixels(a) - _pixels(r["image_path"]) for a, r in zip(attacked, records)]
    assert all(0 < np.abs(d).max() <= 4 for d in deltas)
    cleans = [_pixels(r["image_path"]) for r in records]
    inside = [(c >= 4) & (c <= 251) for c in cleans]  # where no clipping at 0 or 255 can differ
    assert cleans[0].shape == cleans[1].shape
    both = inside[0] & inside[1]
    assert both.mean() > 0.5 and (deltas[0][both] == deltas[1][both]).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pixels_get_a_gradient_through_every_familys_processor(family, tiny_family_dir, mini_dir):
    from safeeraser.models.loading import load_model, load_processor

    model_dir = tiny_family_dir(family)
    model = load_model(str(model_dir), "float32").eval().requires_grad_(False)
    objective = Objective(model, load_processor(str(model_dir)))
    record = json.loads((mini_dir / "all_val.json").read_text())[0]
    record["image_path"] = str(mini_dir / record["image_path"])
    examples = objective.examples([record])
    pixels = read_pixels(record["image_path"])
    # the tensor path gives the processor call's inputs (up to 8-bit rounding inside the file path's resize)
    made = objective.image_inputs(pixels, examples[0].images)
    for name, value in examples[0].images.items():
        assert made[name].shape == value.shape
        assert torch.allclose(made[name].float(), value.float(), atol=0.05)
    leaf = torch.zeros_like(pixels, requires_grad=True)
    loss = objective.loss((pixels + leaf).clamp(0, 1), examples)
    (grad,) = torch.autograd.grad(loss, leaf)
    assert grad.abs().sum() > 0
    # one signed step against the gradient lowers the loss (the tiny model is smooth at this scale)
    step = (-1e-3 * grad.sign())
    assert objective.loss((pixels + step).clamp(0, 1), examples).item() < loss.item()
