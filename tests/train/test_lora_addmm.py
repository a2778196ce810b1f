"""The LoRA layer that adds its update with one addmm_ computes PEFT's outputs and gradients: bit for bit
when lora_alpha / r is a power of two (the shipped configs), to float rounding otherwise."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

from safeeraser.train.lora_addmm import AddmmLoraLinear, use_addmm_lora


class _Block(nn.Module):
    """Three projections of one input (as q, k and v are), then one more: the input's gradient gathers
    six terms, which must add up in PEFT's order."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(32, 48, bias=False) for _ in range(3))
        self.o = nn.Linear(48, 32, bias=True)

    def forward(self, x):
        return self.o(torch.tanh(self.q(x)) * self.k(x) + self.v(x))


def _model(alpha: int, r: int, **lora):
    torch.manual_seed(0)
    model = get_peft_model(_Block(), LoraConfig(r=r, lora_alpha=alpha, target_modules=["q", "k", "v", "o"],
                                                lora_dropout=0.0, **lora))
    with torch.no_grad():  # a non-trivial adapter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return model


def _run(model, addmm: bool, x: torch.Tensor):
    for m in model.modules():
        if isinstance(m, PeftLoraLinear):
            m.__class__ = AddmmLoraLinear if addmm else PeftLoraLinear
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    y = model(x)
    y.square().sum().backward()
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("alpha,r,exact", [(256, 32, True), (32, 16, True), (16, 12, False)])
def test_outputs_and_gradients_are_peft_s(alpha, r, exact):
    model = _model(alpha, r)
    x = torch.randn(4, 96, 32)  # enough rows that the matrix products are blocked
    (y0, gx0, g0), (y1, gx1, g1) = _run(model, False, x), _run(model, True, x)
    assert g0.keys() == g1.keys() and any("lora_A" in n for n in g0)
    same = torch.equal if exact else (lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-4))
    assert same(y0, y1) and same(gx0, gx1)
    assert all(same(g0[n], g1[n]) for n in g0)


def test_disabled_merged_and_variant_layers_run_peft_s_forward():
    x = torch.randn(2, 5, 32)
    model = _model(16, 8)
    use_addmm_lora(model)
    with model.disable_adapter(), torch.no_grad():
        assert torch.equal(model(x), _base_out(model, x))
    dora = _model(16, 8, use_dora=True)
    assert torch.allclose(_run(dora, True, x)[0], _run(dora, False, x)[0])
    model.merge_adapter()
    merged = model(x)
    model.unmerge_adapter()
    assert torch.allclose(merged, model(x), atol=1e-5)


def _base_out(model, x):
    b = model.base_model.model
    q, k, v = (layer.base_layer(x) for layer in (b.q, b.k, b.v))
    return b.o.base_layer(torch.tanh(q) * k + v)


def test_only_peft_linear_layers_change_class_and_the_state_dict_stays():
    model = _model(16, 8)
    keys = list(model.state_dict())
    assert use_addmm_lora(model) == 4
    assert sum(type(m) is AddmmLoraLinear for m in model.modules()) == 4
    assert list(model.state_dict()) == keys
    assert use_addmm_lora(model) == 0


def test_a_hooked_b_matrix_is_called_as_peft_calls_it():
    """A hook around B's forward (how DeepSpeed ZeRO-3 gathers a partitioned weight) must still run."""
    model = _model(16, 8)
    use_addmm_lora(model)
    calls = []
    for m in model.modules():
        if isinstance(m, AddmmLoraLinear):
            m.lora_B["default"].register_forward_pre_hook(lambda mod, args: calls.append(1))
    model(torch.randn(2, 32))
    assert len(calls) == 4
