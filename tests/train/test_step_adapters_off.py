"""The frozen reference's switch: the adapters off as PEFT's disable_adapter() turns them off (the same
outputs, bit for bit), every layer's switch and trainable flags as they were afterwards."""
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from safeeraser.train.step import adapters_off, reference_context


def _model():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 8))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], modules_to_save=["2"]))
    with torch.no_grad():  # adapter and trained copy both change the output
        for name, p in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def test_outputs_are_peft_s_disabled_model_and_state_comes_back():
    model = _model()
    x = torch.randn(5, 16)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with torch.no_grad():
        adapted = model(x)
        with model.disable_adapter():
            peft_off = model(x)
        with adapters_off(model):
            ours = model(x)
        with reference_context(model):
            via_step = model(x)
        after = model(x)
    assert not torch.equal(adapted, peft_off)
    assert torch.equal(ours, peft_off) and torch.equal(via_step, peft_off)
    assert torch.equal(after, adapted)
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}


def test_a_layer_already_off_stays_off():
    model = _model()
    from peft.tuners.lora import LoraLayer

    lora = next(m for m in model.modules() if isinstance(m, LoraLayer))
    lora.enable_adapters(False)
    with adapters_off(model):
        assert lora.disable_adapters
    assert lora.disable_adapters
    from peft.utils.other import ModulesToSaveWrapper

    assert not next(m for m in model.modules() if isinstance(m, ModulesToSaveWrapper)).disable_adapters
