"""Sparse LoRA dropout: nn.Dropout's distribution (each element dropped independently with p, the rest
scaled by 1/(1-p)), drawn from torch's generator, at a fraction of the cost on a CPU."""
import pytest
import torch
from torch import nn

from safeeraser.train.lora_dropout import SPARSE_MIN_ELEMENTS, SparseDropout, dropped_positions, use_sparse_dropout


def test_positions_are_a_bernoulli_sequence():
    torch.manual_seed(0)
    n, p = 2_000_000, 0.05
    pos = dropped_positions(n, p)
    assert pos.dtype == torch.long and pos.min() >= 0 and pos.max() < n
    assert (pos.diff() > 0).all()  # sorted, no position twice
    dropped = torch.zeros(n, dtype=torch.bool)
    dropped[pos] = True
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * sd
    # independent neighbours: P(both dropped) = p^2, as many 0-gaps as a Bernoulli sequence has
    both = (dropped[1:] & dropped[:-1]).float().mean().item()
    assert abs(both - p * p) < 5 * (p * p / n) ** 0.5
    # both ends of the range are reachable
    assert dropped_positions(10, 0.999999).tolist() == list(range(10))
    assert dropped_positions(0, 0.5).numel() == 0


def test_output_and_gradient_are_dropout_with_the_same_mask():
    torch.manual_seed(1)
    p = 0.1
    d = SparseDropout(p).train()
    x = torch.randn(64, 40, 16, requires_grad=True)  # above SPARSE_MIN_ELEMENTS
    assert x.numel() >= SPARSE_MIN_ELEMENTS
    y = d(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    assert 0.05 < 1 - kept.float().mean().item() < 0.15
    g = torch.randn_like(y)
    y.backward(g)
    assert torch.equal(x.grad == 0, ~kept)
    assert torch.allclose(x.grad[kept], g[kept] / (1 - p))
    xt = torch.randn(16, 40, 64).transpose(0, 2)  # not contiguous: positions follow the logical order
    yt = d(xt)
    assert ((yt == 0) | torch.isclose(yt, xt / (1 - p))).all()


def test_masks_follow_torch_generator_and_eval_is_identity():
    d = SparseDropout(0.05).train()
    x = torch.randn(128, 256)
    state = torch.get_rng_state()
    a = d(x)
    torch.set_rng_state(state)  # what a resumed run restores
    assert torch.equal(a, d(x))
    assert not torch.equal(a, d(x))
    assert torch.equal(d.eval()(x), x)


def test_small_inputs_use_torch_dropout_bit_for_bit():
    x = torch.randn(8, 16)
    assert x.numel() < SPARSE_MIN_ELEMENTS
    torch.manual_seed(3)
    ours = SparseDropout(0.2).train()(x)
    torch.manual_seed(3)
    assert torch.equal(ours, nn.Dropout(0.2).train()(x))


def test_prepare_model_installs_the_fast_layers_unless_asked_for_peft_s(tiny_dir):
    from peft.tuners.lora.layer import Linear as PeftLoraLinear

    from safeeraser.models.families import family_for
    from safeeraser.models.loading import load_model
    from safeeraser.train.config import ConfigError, load_config
    from safeeraser.train.lora_addmm import AddmmLoraLinear
    from safeeraser.train.model_setup import lora_layers, prepare_model

    cfg = load_config(None, ["LoRA.r=4", "LoRA.alpha=8", "LoRA.dropout=0.05"], validate_paths=False)
    model = prepare_model(load_model(str(tiny_dir), "float32"), cfg, family_for("llava"))
    assert {type(m) for m in model.modules() if isinstance(m, nn.Dropout)} == {SparseDropout}
    assert {type(m) for m in model.modules() if isinstance(m, PeftLoraLinear)} == {AddmmLoraLinear}
    assert use_sparse_dropout(model) == 0  # nothing left to replace
    cfg = load_config(None, ["LoRA.r=4", "LoRA.alpha=8", "LoRA.dropout=0.05", "LoRA.layers=peft"],
                      validate_paths=False)
    model = prepare_model(load_model(str(tiny_dir), "float32"), cfg, family_for("llava"))
    assert {type(m) for m in model.modules() if isinstance(m, nn.Dropout)} == {nn.Dropout}
    assert {type(m) for m in model.modules() if isinstance(m, PeftLoraLinear)} == {PeftLoraLinear}
    with pytest.raises(ConfigError, match="LoRA.layers"):
        load_config(None, ["LoRA.layers=fastest"], validate_paths=False)
    cfg.LoRA.layers = "fastest"  # set after validation
    with pytest.raises(ConfigError, match="LoRA.layers"):
        lora_layers(cfg)


def test_the_default_layers_leave_run_names_as_they_were():
    from omegaconf import OmegaConf

    from safeeraser.train.config import config_differences, identity_config, load_config

    cfg = load_config(None, [], validate_paths=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["LoRA"]["layers"] == "fast"
    before = {k: v for k, v in resolved.items()}  # a run saved before the key existed
    before["LoRA"] = {k: v for k, v in resolved["LoRA"].items() if k != "layers"}
    assert identity_config(resolved) == identity_config(before)
    assert config_differences(before, cfg) == []
    peft = load_config(None, ["LoRA.layers=peft"], validate_paths=False)
    assert identity_config(OmegaConf.to_container(peft, resolve=True))["LoRA"]["layers"] == "peft"
    assert config_differences(before, peft) == ["LoRA.layers: (unset) -> 'peft'"]
