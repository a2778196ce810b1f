"""The fused forward and the adapter-disabled reference are exact rewrites of the naive versions."""
import pytest
import torch

from safeeraser.data.encode import PromptEncoder
from safeeraser.data.records import load_benchmark
from safeeraser.models.families import family_for
from safeeraser.data.views import forget_items
from safeeraser.models.loading import load_model, load_processor
from safeeraser.train.dataset import UnlearnDataset, ViewCollator
from safeeraser.train.methods import parse_method
from safeeraser.train.model_setup import prepare_model
from safeeraser.train.step import compute_loss

LLAVA = family_for("llava")


def _batch(proc, mini_dir, method):
    items = forget_items(load_benchmark(mini_dir / "all_train.json"))
    ds = UnlearnDataset(items, method.views(), PromptEncoder(proc, LLAVA), ["I can't help."], seed=0)
    return ViewCollator(proc.tokenizer.pad_token_id, LLAVA)([ds[i] for i in range(4)])


def _lora_model(path, cfg):
    torch.manual_seed(0)
    model = prepare_model(load_model(str(path), "float32"), cfg, LLAVA)
    with torch.no_grad():  # a non-trivial adapter, so that current and reference differ
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.eval()  # no dropout: compare exact functions
    return model


@pytest.mark.parametrize("name", ["gdpd", "klpd", "npopd", "popd", "rmupd", "dpopd", "idkdpopd", "undialpd",
                                  "wgapd", "scrubpd"])
def test_fused_forward_equals_separate_passes(vanilla_dir, mini_dir, forget_cfg, name):
    cfg = forget_cfg(f"forget_loss={name}")
    proc = load_processor(str(vanilla_dir))
    method = parse_method(name)
    views = _batch(proc, mini_dir, method)
    results = []
    for fused in (True, False):
        cfg.optim.fused_forward = fused
        model = _lora_model(vanilla_dir, cfg)
        loss, parts = compute_loss(model, views, method, cfg, proc.tokenizer.pad_token_id, LLAVA)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), {k: v.item() for k, v in parts.items()}, grads))
    (l1, p1, g1), (l2, p2, g2) = results
    assert l1 == pytest.approx(l2, rel=1e-5, abs=1e-5)
    assert p1 == pytest.approx(p2, rel=1e-5, abs=1e-5)
    assert g1.keys() == g2.keys() and len(g1) > 0
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-5, rtol=1e-4), n


def test_kl_reference_is_the_base_model_without_a_copy(vanilla_dir, mini_dir, forget_cfg):
    cfg = forget_cfg("forget_loss=kl")
    proc = load_processor(str(vanilla_dir))
    method = parse_method("kl")
    views = _batch(proc, mini_dir, method)
    model = _lora_model(vanilla_dir, cfg)
    copy = load_model(str(vanilla_dir), "float32").eval()
    with torch.no_grad():
        _, disabled = compute_loss(model, views, method, cfg, proc.tokenizer.pad_token_id, LLAVA)
        _, separate = compute_loss(model, views, method, cfg, proc.tokenizer.pad_token_id, LLAVA, ref_model=copy)
    assert disabled["kl"].item() > 1e-4  # the adapter really changed the model
    assert disabled["kl"].item() == pytest.approx(separate["kl"].item(), rel=1e-5, abs=1e-7)


def test_kl_all_positions_flag_changes_the_average(vanilla_dir, mini_dir, forget_cfg):
    proc = load_processor(str(vanilla_dir))
    method = parse_method("kl")
    views = _batch(proc, mini_dir, method)
    values = []
    for flag in ("false", "true"):
        cfg = forget_cfg("forget_loss=kl", f"kl_all_positions={flag}")
        with torch.no_grad():
            values.append(compute_loss(_lora_model(vanilla_dir, cfg), views, method, cfg,
                                       proc.tokenizer.pad_token_id, LLAVA)[1]["kl"].item())
    assert values[0] != pytest.approx(values[1], rel=1e-3)


def test_answer_window_starts_at_the_position_predicting_the_first_answer_token():
    from safeeraser.data.encode import IGNORE_INDEX
    from safeeraser.models.scoring import answer_window

    labels = torch.full((2, 10), IGNORE_INDEX)
    labels[0, 6:9] = 5
    labels[1, 4:7] = 5  # the earliest answer token is at 4: its logits come from position 3
    assert answer_window(labels) == 10 - 3
    assert answer_window(torch.full((2, 10), IGNORE_INDEX)) == 0  # nothing to read: keep everything


@pytest.mark.parametrize("name,fused", [("gdpd", True), ("klpd", True), ("klpd", False), ("npopd", True)])
def test_answer_logits_only_gives_the_same_losses_and_gradients(vanilla_dir, mini_dir, forget_cfg, name, fused):
    proc = load_processor(str(vanilla_dir))
    method = parse_method(name)
    views = _batch(proc, mini_dir, method)
    results, widths = [], []
    for flag in ("true", "false"):
        cfg = forget_cfg(f"forget_loss={name}", f"answer_logits_only={flag}", f"fused_forward={str(fused).lower()}")
        model = _lora_model(vanilla_dir, cfg)
        seen = []
        model.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
        loss, parts = compute_loss(model, views, method, cfg, proc.tokenizer.pad_token_id, LLAVA)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), {k: v.item() for k, v in parts.items()}, grads))
        widths.append(sum(seen))
    (l1, p1, g1), (l2, p2, g2) = results
    assert widths[0] < widths[1]  # the output layer really saw fewer positions
    assert l1 == pytest.approx(l2, rel=1e-5, abs=1e-5)
    assert p1 == pytest.approx(p2, rel=1e-5, abs=1e-5)
    assert g1.keys() == g2.keys() and len(g1) > 0
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-5, rtol=1e-4), n
