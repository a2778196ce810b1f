"""RMU as WMDP defines it: which layer it reads, which tokens it steers, and the paper's training scope."""
from __future__ import annotations

import pytest
import torch

from hand_written import cfg, view
from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder
from safeeraser.data.records import load_benchmark
from safeeraser.data.views import forget_items
from safeeraser.models.families import family_for
from safeeraser.models.loading import load_model, load_processor
from safeeraser.train.dataset import UnlearnDataset, ViewCollator
from safeeraser.train.methods import parse_method
from safeeraser.train.methods.terms import KINDS, steering_direction
from safeeraser.train.step import _forward, default_hidden_layer, hidden_layer, text_after_image

LLAVA = family_for("llava")


def test_the_default_layer_is_wmdps_seven_of_thirty_two():
    assert [default_hidden_layer(d) for d in (32, 28, 40, 2, 1)] == [7, 6, 9, 0, 0]


@pytest.fixture(scope="module")
def tiny(vanilla_dir, mini_dir):
    model = load_model(str(vanilla_dir), "float32").eval()
    proc = load_processor(str(vanilla_dir))
    items = forget_items(load_benchmark(mini_dir / "all_train.json"))
    ds = UnlearnDataset(items, ["forget", "retain"], PromptEncoder(proc, LLAVA), ["I can't help."], seed=0)
    batch = ViewCollator(proc.tokenizer.pad_token_id, LLAVA)([ds[i] for i in range(3)])
    return model, batch


def test_layer_k_is_the_output_of_decoder_layer_k_before_the_final_norm(tiny):
    model, batch = tiny
    forget = batch["forget"]
    with torch.no_grad():
        states = model(**{k: v for k, v in _inputs(forget).items()}, output_hidden_states=True).hidden_states
        depth = len(states) - 1
        for k in range(depth):
            _, hidden = _forward(model, forget, layer=hidden_layer(model, {"layer": k}, LLAVA))
            if k < depth - 1:  # hidden_states[k + 1] is layer k's output, but the last one is after the norm
                assert torch.equal(hidden, states[k + 1])
            else:
                assert not torch.allclose(hidden, states[-1])
                norm = model.get_submodule(f"{LLAVA.language}.norm")
                assert torch.allclose(norm(hidden), states[-1], atol=1e-5)


def _inputs(view_batch):
    from safeeraser.data.encode import model_inputs

    return model_inputs(view_batch)


def test_the_steered_positions_are_the_text_after_the_image(tiny):
    model, batch = tiny
    forget = batch["forget"]
    image_id = model.config.image_token_id
    mask = text_after_image(forget, image_id)
    for r in range(forget["input_ids"].shape[0]):
        ids, real = forget["input_ids"][r].tolist(), forget["attention_mask"][r].tolist()
        last_image = max(i for i, t in enumerate(ids) if t == image_id)
        expected = [bool(real[i]) and i > last_image for i in range(len(ids))]
        assert mask[r].tolist() == expected
        answer = [i for i, label in enumerate(forget["labels"][r].tolist()) if label != IGNORE_INDEX]
        assert all(expected[i] for i in answer) and sum(expected) > len(answer)  # the question is in, too


@pytest.mark.parametrize("positions", ["question_answer", "answer", "all"])
def test_rmu_losses_by_hand(positions):
    forget, retain = view(21, answer_from=(3, 4)), view(22, answer_from=(2, 5))
    g = torch.Generator().manual_seed(3)
    for v in (forget, retain):
        v.hidden, v.ref_hidden = torch.randn(2, 7, 5, generator=g), torch.randn(2, 7, 5, generator=g)
        v.mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]])
        v.text_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1]])
    args = {"steering": 2.0, "alpha": 3.0, "positions": positions}
    settings = cfg(seed=5)
    u = steering_direction(5, 5, "cpu")
    which = {"question_answer": forget.text_mask, "all": forget.mask,
             "answer": (forget.labels != IGNORE_INDEX).long()}[positions]
    rows = []
    for r in range(2):
        points = [sum((forget.hidden[r, t, d] - 2.0 * u[d]) ** 2 for d in range(5)) / 5
                  for t in range(7) if which[r, t]]
        rows.append(float(sum(points)) / len(points))
    term = [t for t in parse_method("rmu").terms if t.kind == "rmu_forget"][0]
    assert float(KINDS["rmu_forget"]({"forget": forget}, term, settings, args)) == pytest.approx(
        sum(rows) / 2, rel=1e-5)
    kept = []
    for r in range(2):
        points = [sum((retain.hidden[r, t, d] - retain.ref_hidden[r, t, d]) ** 2 for d in range(5)) / 5
                  for t in range(7) if retain.mask[r, t]]
        kept.append(float(sum(points)) / len(points))
    term = [t for t in parse_method("rmu").terms if t.kind == "rmu_retain"][0]
    assert float(KINDS["rmu_retain"]({"retain": retain}, term, settings, args)) == pytest.approx(
        3.0 * sum(kept) / 2, rel=1e-5)


def test_wmdps_scope_trains_down_projections_of_the_chosen_layers_only(forget_cfg):
    import json

    from safetensors.torch import load_file

    from safeeraser.train.loop import run_training

    out = run_training(forget_cfg("forget_loss=rmu", "method_args.alpha=1", "method_args.layer=1",
                                  "LoRA.target_modules=[down_proj]", "LoRA.target_layers=[1]",
                                  "tune_mm_projector=false", "max_train_steps=2"))
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert saved and all(".layers.1.mlp.down_proj.lora_" in k for k in saved), sorted(saved)
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"].count("layers") == 1
    with pytest.raises(Exception, match="key 'LoRA.target_layers': layer 5 has none of down_proj; the language "
                                        r"model's layers are 0..1"):
        run_training(forget_cfg("forget_loss=rmu", "LoRA.target_modules=[down_proj]", "LoRA.target_layers=[5]",
                                "max_train_steps=1"))
