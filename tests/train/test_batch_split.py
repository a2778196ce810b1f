"""Same results at any process count: a global batch split into micro-batches (gradient accumulation k
on one process, or k processes of accumulation 1: accelerate and DDP both average the micro-batches'
gradients) gives the gradient of the whole batch, for every method. The launched multi-process runs
(tests/distributed) show the machinery equal for gdpd and klpd; this shows the losses decompose, which
is what makes it true for every method. Tolerance: float summation order alone, 1e-4 relative / 1e-6
absolute on every gradient entry.

Not split-invariant, by design, are the reference's batch-level options (token_mean=batch,
po_pooling=pooled, kl_positions=all|reference): they average over the micro-batch's tokens or positions,
so they agree across splits only at micro-batch size 1, as the reference runs them."""
from __future__ import annotations

import pytest
import torch

from safeeraser.data.encode import PromptEncoder
from safeeraser.data.records import load_benchmark
from safeeraser.data.views import forget_items
from safeeraser.models.families import family_for
from safeeraser.models.loading import load_model, load_processor
from safeeraser.train.dataset import UnlearnDataset, ViewCollator
from safeeraser.train.methods import METHOD_NAMES, parse_method
from safeeraser.train.model_setup import prepare_model
from safeeraser.train.step import compute_loss

LLAVA = family_for("llava")
ROWS = 4
# small arguments where the defaults are for 7B models, so that every term has a gradient of its size
ARGS = {"rmu": ("method_args.alpha=1",), "undial": ("loss_weights.retain=1",)}


@pytest.fixture(scope="module")
def setup(vanilla_dir, mini_dir):
    proc = load_processor(str(vanilla_dir))
    items = forget_items(load_benchmark(mini_dir / "all_train.json"))
    return proc, items


def _grads(model, views, method, cfg, pad_id, epoch=0, scale=1.0):
    model.zero_grad(set_to_none=True)
    loss, _ = compute_loss(model, views, method, cfg, pad_id, LLAVA, epoch=epoch)
    (loss * scale).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _split_and_whole(setup, vanilla_dir, forget_cfg, name, *overrides, epoch=0):
    proc, items = setup
    cfg = forget_cfg(f"forget_loss={name}", *ARGS.get(name.removesuffix("pd"), ()), *overrides)
    method = parse_method(name)
    refusals = ["No.", "I am sorry, but I cannot help with this request: it could cause real harm to people."]
    ds = UnlearnDataset(items, method.views(), PromptEncoder(proc, LLAVA), refusals, seed=0)
    examples = [ds[i] for i in range(ROWS)]
    collate = ViewCollator(proc.tokenizer.pad_token_id, LLAVA)
    torch.manual_seed(0)
    model = prepare_model(load_model(str(vanilla_dir), "float32"), cfg, LLAVA)
    with torch.no_grad():  # a non-trivial adapter: current and reference differ, every term has a gradient
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.eval()  # no dropout: the same function on every pass
    pad = proc.tokenizer.pad_token_id
    whole = _grads(model, collate(examples), method, cfg, pad, epoch)
    halves = [_grads(model, collate(part), method, cfg, pad, epoch, scale=0.5)
              for part in (examples[: ROWS // 2], examples[ROWS // 2:])]
    split = {n: halves[0][n] + halves[1][n] for n in whole}
    return whole, split


# the weight-restricting methods (mmunlearner: gd's terms; manu: none) train without LoRA, which this
# test's perturbed adapter needs
@pytest.mark.parametrize("name", [n for n in METHOD_NAMES if n != "sft" and not parse_method(n).restriction])
def test_two_micro_batches_give_the_whole_batchs_gradient(setup, vanilla_dir, forget_cfg, name):
    whole, split = _split_and_whole(setup, vanilla_dir, forget_cfg, name)
    assert whole and whole.keys() == split.keys()
    assert max(float(g.abs().max()) for g in whole.values()) > 1e-4  # a real gradient
    for n in whole:
        torch.testing.assert_close(split[n], whole[n], rtol=1e-4, atol=1e-6, msg=n)


def test_scrubs_min_epoch_splits_too(setup, vanilla_dir, forget_cfg):
    whole, split = _split_and_whole(setup, vanilla_dir, forget_cfg, "scrubpd", epoch=1)
    for n in whole:
        torch.testing.assert_close(split[n], whole[n], rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("name, override", [("gd", "token_mean=batch"), ("po", "po_pooling=pooled"),
                                            ("kl", "kl_positions=all")])
def test_batch_level_reference_options_do_not_split(setup, vanilla_dir, forget_cfg, name, override):
    whole, split = _split_and_whole(setup, vanilla_dir, forget_cfg, name, override)
    worst = max(float(((split[n] - whole[n]).abs() / (whole[n].abs() + 1e-6)).max()) for n in whole)
    assert worst > 1e-3  # 10x the float-order tolerance: these averages change with the micro-batch
