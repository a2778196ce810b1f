"""The quantize attack: the formats' arithmetic against hand computations, and the model it changes."""
from __future__ import annotations

import json

import pytest
import torch

from safeeraser.attacks.quantize import BLOCK, fake_quantize, nf4_levels

# QLoRA's NormalFloat4 levels as the paper's appendix prints them
NF4_PUBLISHED = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0]


def test_nf4_levels_are_qloras():
    assert nf4_levels() == pytest.approx(NF4_PUBLISHED, abs=1e-6)


def test_int8_rounds_each_row_to_its_own_absmax_step():
    w = torch.tensor([[0.5, -1.0, 0.26], [2.0, 0.013, -0.7]])
    out = fake_quantize(w, "int8")
    for r, row in enumerate(w.tolist()):
        step = max(abs(x) for x in row) / 127
        assert out[r].tolist() == pytest.approx([round(x / step) * step for x in row], abs=1e-7)


def test_int4_and_nf4_work_in_blocks_of_64():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 50, generator=g)  # 150 weights: blocks of 64, 64 and 22 (padded)
    flat = w.reshape(-1).tolist()
    int4 = fake_quantize(w, "int4").reshape(-1).tolist()
    nf4 = fake_quantize(w, "nf4").reshape(-1).tolist()
    levels = nf4_levels()
    for start in range(0, len(flat), BLOCK):
        block = flat[start:start + BLOCK]
        absmax = max(abs(x) for x in block)
        for i, x in enumerate(block):
            assert int4[start + i] == pytest.approx(max(-7, min(7, round(x / absmax * 7))) / 7 * absmax, abs=1e-6)
            nearest = min(levels, key=lambda v: abs(x / absmax - v))
            assert nf4[start + i] == pytest.approx(nearest * absmax, abs=1e-6)
        assert len({round(v, 9) for v in nf4[start:start + BLOCK]}) <= 16


def test_the_attack_rounds_the_language_model_only(vanilla_dir):
    from safeeraser.attacks import attack_for
    from safeeraser.models.families import family_for
    from safeeraser.models.loading import load_model

    model = load_model(str(vanilla_dir), "float32")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rounded = attack_for("quantize").model_transform("nf4")(model)
    family = family_for(model.config.model_type)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert rounded > 0 and changed
    assert all(family.part_of(n) == "language" and n.endswith("weight") for n in changed)
    output = model.get_output_embeddings().weight
    assert torch.equal(output, before[next(n for n, p in model.named_parameters() if p is output)])
    for n in changed:
        block = model.get_parameter(n).reshape(-1)[:BLOCK]
        assert len(set(block.tolist())) <= 16


def test_quantized_answers_come_back_under_the_original_fields(two_records, attack_cli, tmp_path):
    from safeeraser.eval.matching import load_matched

    data, _ = two_records
    out = tmp_path / "int4.json"
    assert attack_cli("quantize", "int4", data, out) == 0
    assert len(load_matched(out, data)) == 2
    assert all(r["attack"] == {"kind": "quantize", "variant": "int4", "image_path": r["image_path"],
                               "questions": [p["question"] for p in r["unsafe_pairs"]]}
               for r in json.loads(out.read_text()))


@pytest.mark.parametrize("variant", ["int8", "nf4", "int4"])
def test_quantized_weights_lie_on_the_grid_and_change_an_off_grid_models_outputs(variant, vanilla_dir, mini_dir):
    from safeeraser.attacks import attack_for
    from safeeraser.data.encode import PromptEncoder, model_inputs, pad_batch
    from safeeraser.data.records import load_benchmark
    from safeeraser.models.families import family_of_model
    from safeeraser.models.loading import load_model, load_processor

    model = load_model(str(vanilla_dir), "float32").eval()
    family = family_of_model(model)
    encoder = PromptEncoder(load_processor(str(vanilla_dir)), family)
    record = load_benchmark(mini_dir / "all_val.json")[0]
    batch = pad_batch([encoder.encode_prompt(record.image, p["question"]) for p in record.unsafe_pairs],
                      encoder.tokenizer.pad_token_id, family, side="left")
    with torch.no_grad():
        before = model(**model_inputs(batch)).logits[:, -1]
    transform = attack_for("quantize").model_transform(variant)
    transform(model)
    rounded = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        after = model(**model_inputs(batch)).logits[:, -1]
    assert (after - before).abs().max() > 1e-3  # the fine-tuned weights were off the grid: the outputs moved
    transform(model)  # rounding weights that are on the grid changes none of them
    for n, p in model.named_parameters():
        assert torch.allclose(p, rounded[n], rtol=0, atol=1e-7 * max(1.0, rounded[n].abs().max().item())), n
