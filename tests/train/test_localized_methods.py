"""The multimodal methods that decide where to forget (MMUnlearner's Fisher mask, MANU's pruned neurons):
their importance scores against hand computations, the restriction's guarantees (masked weights
bit-identical, pruned neurons silent), training, loading through ckpt_infer, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from safeeraser.data.encode import IGNORE_INDEX, model_inputs, pad_token_id
from safeeraser.models.loading import family_of, load_model, load_processor
from safeeraser.train.config import ConfigError, validate
from safeeraser.train.importance import importance_for
from safeeraser.train.importance.base import ScoringPass
from safeeraser.train.importance.activation import top_neurons
from safeeraser.train.importance.fisher import EPS, selected
from safeeraser.train.localize import SUMMARY_FILE, check_localized
from safeeraser.train.loop import Trainer, build_dataset, run_training
from safeeraser.train.methods import parse_method
from safeeraser.train.restrict import WeightMask

FULL = ("LoRA.r=0", "tune_language_model=true")


def _pass(cfg, model, method, n_batches=2):
    """A ScoringPass over the first `n_batches` micro-batches of the run's data, one process."""
    from safeeraser.train.dataset import ViewCollator

    processor, family = load_processor(cfg.model.model_path), family_of(cfg.model.model_path)
    pad = pad_token_id(processor.tokenizer)
    dataset = build_dataset(cfg, method, processor, family)
    dataset.set_epoch(0)
    collate = ViewCollator(pad, family)
    size = cfg.optim.batch_size
    batches = [collate([dataset[i] for i in range(b * size, (b + 1) * size)]) for b in range(n_batches)]
    args = method.resolve_args(dict(cfg.method.method_args))
    import contextlib

    return ScoringPass(model, lambda: iter(batches), method, args, cfg, pad, family, total=lambda t: t,
                       autocast=contextlib.nullcontext), batches


def _hand_nll(model, batch) -> torch.Tensor:
    """Mean over the rows of each row's mean answer-token NLL, from the full logits (log-softmax and a
    gather, written apart from the training code)."""
    logits = model(**model_inputs(batch), use_cache=False).logits.float()
    labels = batch["labels"]
    rows = []
    for r in range(labels.shape[0]):
        pos = [t for t in range(1, labels.shape[1]) if labels[r, t] != IGNORE_INDEX]
        logp = torch.log_softmax(logits[r], dim=-1)
        rows.append(-torch.stack([logp[t - 1, labels[r, t]] for t in pos]).mean())
    return torch.stack(rows).mean()


def test_fisher_margin_is_the_hand_computed_one(forget_cfg, vanilla_dir):
    cfg = forget_cfg("forget_loss=mmunlearner", *FULL, "method_args.threshold=2.0", "batch_size=2")
    method = parse_method("mmunlearner")
    model = load_model(str(vanilla_dir), "float32").eval()
    from safeeraser.train.model_setup import prepare_model

    model = prepare_model(model, cfg, family_of(str(vanilla_dir)))
    scoring, batches = _pass(cfg, model, method)
    margin = importance_for("fisher").score(scoring)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {v: {n: torch.zeros_like(p) for n, p in params.items()} for v in ("forget", "retain")}
    for batch in batches:
        for view in fisher:
            grads = torch.autograd.grad(_hand_nll(model, batch[view]), list(params.values()), allow_unused=True)
            for n, g in zip(params, grads):
                if g is not None:
                    fisher[view][n] += g ** 2
    assert margin.keys() == params.keys()
    checked = 0
    for n in params:
        expected = fisher["forget"][n] - 2.0 * fisher["retain"][n]
        scale = float((fisher["forget"][n] + 2.0 * fisher["retain"][n]).max())  # the difference cancels
        torch.testing.assert_close(margin[n], expected, rtol=1e-3, atol=1e-4 * scale + 1e-30)
        ratio = (fisher["forget"][n] + EPS) / (fisher["retain"][n] + EPS)
        clear = (ratio - 2.0).abs() > 1e-2  # away from the threshold, where float order cannot flip it
        assert torch.equal(selected(margin[n], 2.0)[clear], (ratio >= 2.0)[clear]), n
        checked += int(clear.sum())
    share = sum(int(selected(m, 2.0).sum()) for m in margin.values()) / sum(m.numel() for m in margin.values())
    assert checked > 0.9 * sum(p.numel() for p in params.values()) and 0 < share < 1


def _hand_statistics(acts: np.ndarray, active: float) -> dict:
    return {"abs": np.abs(acts).mean(0), "freq": (np.abs(acts) > active).mean(0), "var": acts.std(0),
            "rms": np.sqrt((acts ** 2).mean(0))}


def test_neuron_scores_are_the_hand_computed_ones(forget_cfg, vanilla_dir):
    cfg = forget_cfg("forget_loss=manu", *FULL, "batch_size=2", "method_args.w_freq=1.0")
    method = parse_method("manu")
    model = load_model(str(vanilla_dir), "float32").eval()
    scoring, batches = _pass(cfg, model, method)
    scores = importance_for("activation").score(scoring)
    image_id = model.config.image_token_id
    watched = {"vision": "model.vision_tower.encoder.layers.1.mlp.fc2",
               "language": "model.language_model.layers.0.mlp.down_proj"}
    acts = {(v, part): [] for v in ("forget", "retain") for part in watched}
    modules = dict(model.named_modules())
    for view in ("forget", "retain"):
        for batch in batches:
            seen = {}
            hooks = [modules[m].register_forward_hook(lambda mod, a, out, part=part: seen.__setitem__(part, out))
                     for part, m in watched.items()]
            with torch.no_grad():
                model(**model_inputs(batch[view]), use_cache=False)
            for h in hooks:
                h.remove()
            ids, real = batch[view]["input_ids"].numpy(), batch[view]["attention_mask"].numpy()
            acts[view, "vision"].append(seen["vision"].reshape(-1, seen["vision"].shape[-1]).numpy())
            for r in range(ids.shape[0]):  # the text after the row's last image token
                last = max(t for t in range(ids.shape[1]) if ids[r, t] == image_id)
                keep = [t for t in range(last + 1, ids.shape[1]) if real[r, t]]
                acts[view, "language"].append(seen["language"][r, keep].numpy())
    w = {"abs": 2.0, "freq": 1.0, "var": 2.0, "rms": 2.0}
    for part, name in watched.items():
        f = _hand_statistics(np.concatenate(acts["forget", part]).astype(np.float64), 0.1)
        r = _hand_statistics(np.concatenate(acts["retain", part]).astype(np.float64), 0.1)
        expected = sum(w[k] * (f[k] / (r[k] + 1e-5) - 1) for k in w)
        np.testing.assert_allclose(scores[name].numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=name)
        assert np.ptp(expected) > 0.1  # neurons differ: the ranking means something


def test_the_top_share_is_taken_per_modality():
    scores = {"v.a": torch.tensor([5.0, 1.0, 0.0, 4.0]), "v.b": torch.tensor([3.0, 2.0]),
              "l.a": torch.tensor([-1.0, -2.0, 9.0, 0.5, 0.1])}
    parts = {"v.a": "vision", "v.b": "vision", "l.a": "language"}
    chosen = top_neurons(scores, parts, 0.4)  # vision: floor(0.4 * 6) = 2 of 6; language: 2 of 5
    assert {n: r.tolist() for n, r in chosen.items()} == {"v.a": [0, 3], "l.a": [2, 3]}
    assert {n: r.tolist() for n, r in top_neurons(scores, parts, 0.01).items()} == {"v.a": [0], "l.a": [2]}


def test_unmasked_weights_follow_adamw_and_masked_ones_never_move():
    """Through accelerate's optimizer wrapper (it replaces the group dicts) and a warm-up schedule (the lr
    changes every step): the free elements get AdamW's own values, decay included, bit for bit."""
    from accelerate import Accelerator
    from transformers import get_scheduler

    torch.manual_seed(0)
    plain, masked = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    masked.load_state_dict(plain.state_dict())
    start = masked.weight.detach().clone()
    keep = torch.rand(4, 6) > 0.5
    mask = WeightMask(masked, {"weight": keep})

    def groups(layer):
        return [{"params": [layer.weight], "weight_decay": 0.1}, {"params": [layer.bias], "weight_decay": 0.0}]

    acc = Accelerator(cpu=True)
    opts = {}
    for name, layer, g in (("plain", plain, groups(plain)), ("masked", masked, mask.optimizer_groups(groups(masked)))):
        opt = torch.optim.AdamW(g, lr=0.05)
        if name == "masked":
            mask.attach(opt)
        opt = acc.prepare(opt)
        opts[name] = (layer, opt, get_scheduler("linear", opt, num_warmup_steps=2, num_training_steps=6))
    for step in range(5):
        # a loss whose gradient at each weight depends on that weight alone: the unmasked elements of both
        # layers then see the same gradients however the masked ones differ
        c, cb = torch.randn(4, 6), torch.randn(4)
        for layer, opt, sched in opts.values():
            opt.zero_grad()
            ((layer.weight * c).sum() + layer.weight.pow(3).sum() + (layer.bias * cb).sum()).backward()
            opt.step()
            sched.step()
    assert torch.equal(masked.weight[~keep], start[~keep])  # bit for bit, decay included
    assert torch.equal(masked.weight[keep], plain.weight[keep])  # AdamW's own values at the scheduled lr
    assert torch.equal(masked.bias, plain.bias) and not torch.equal(plain.weight, start)
    assert mask.frozen_count() == int((~keep).sum())


def _nll(model_dir, mini_dir, view):
    from test_methods import _views

    from safeeraser.train.evaluate import mean_nll

    return mean_nll(load_model(str(model_dir), "float32"), load_processor(str(model_dir)), _views(mini_dir)[view])


def test_mmunlearner_moves_only_salient_weights_and_forgets_more_than_it_loses(forget_cfg, vanilla_dir, mini_dir,
                                                                              tmp_path):
    from safeeraser.infer.ckpt_infer import main as infer_main

    cfg = forget_cfg("forget_loss=mmunlearnerpd", *FULL, "max_train_steps=8", "lr=1e-3", "weight_decay=0.1",
                     "lr_scheduler_type=constant", "warmup_ratio=0")
    trainer = Trainer(cfg).setup()
    masks = {n: m for n, p in trainer.model.named_parameters() for q, m in trainer.mask.masks.items() if p is q}
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if n in masks}
    out = trainer.train().finish()
    after = dict(load_model(str(out), "float32").named_parameters())
    moved = 0
    for n, keep in masks.items():
        assert torch.equal(after[n][~keep], before[n][~keep]), n  # decay 0.1 would move them otherwise
        moved += int((after[n][keep] != before[n][keep]).sum())
    frozen = sum(int((~m).sum()) for m in masks.values())
    assert frozen > 0 and moved > 0
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["importance"] == "fisher" and summary["selected"]["language"]["chosen"] > 0
    start = {v: _nll(vanilla_dir, mini_dir, v) for v in ("forget", "retain")}
    end = {v: _nll(out, mini_dir, v) for v in ("forget", "retain")}
    assert end["forget"] - start["forget"] > end["retain"] - start["retain"] + 0.5, (start, end)
    answers = tmp_path / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--checkpoint_path", str(out), "--output_file", str(answers), "--max_new_tokens", "4",
                       "--batch_size", "8"]) == 0
    assert json.loads(answers.read_text())


def test_manu_prunes_neurons_that_then_output_zero_and_forgets_more_than_it_loses(forget_cfg, vanilla_dir,
                                                                                  mini_dir, tmp_path):
    from safeeraser.infer.ckpt_infer import main as infer_main

    out = run_training(forget_cfg("forget_loss=manu", *FULL, "method_args.ratio=0.05"))
    summary = json.loads((out / SUMMARY_FILE).read_text())
    neurons = summary["neurons"]
    parts = {"vision" if "vision_tower" in n else "language" for n in neurons}
    assert parts == {"vision", "language"}
    assert sum(map(len, neurons.values())) == sum(p["chosen"] for p in summary["selected"].values())
    base, pruned = load_model(str(vanilla_dir), "float32").eval(), load_model(str(out), "float32").eval()
    outputs = {}
    modules = dict(pruned.named_modules())
    hooks = [modules[n].register_forward_hook(lambda m, a, o, n=n: outputs.__setitem__(n, o)) for n in neurons]
    with torch.no_grad():
        pixel = torch.randn(1, 3, pruned.config.vision_config.image_size, pruned.config.vision_config.image_size)
        ids = torch.tensor([[pruned.config.image_token_id] * _image_tokens(pruned) + [5, 6, 7]])
        pruned(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixel, use_cache=False)
    for h in hooks:
        h.remove()
    base_modules = dict(base.named_modules())
    for n, rows in neurons.items():
        assert (outputs[n][..., rows] == 0).all(), n
        assert base_modules[n].weight[rows].abs().sum() > 0  # they were live before
    start = {v: _nll(vanilla_dir, mini_dir, v) for v in ("forget", "retain")}
    end = {v: _nll(out, mini_dir, v) for v in ("forget", "retain")}
    assert end["forget"] - start["forget"] > end["retain"] - start["retain"], (start, end)
    answers = tmp_path / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--checkpoint_path", str(out), "--output_file", str(answers), "--max_new_tokens", "4",
                       "--batch_size", "8"]) == 0


def _image_tokens(model) -> int:
    v = model.config.vision_config
    return (v.image_size // v.patch_size) ** 2


@pytest.mark.parametrize("overrides, key", [
    (("forget_loss=manu", *FULL, "method_args.ratio=1.0"), "method_args.ratio"),
    (("forget_loss=manu", *FULL, "method_args.ratio=0"), "method_args.ratio"),
    (("forget_loss=manu", *FULL, "method_args.importance=saliency"), "method_args.importance"),
    (("forget_loss=mmunlearner", *FULL, "method_args.importance=activation"), "method_args.importance"),
    (("forget_loss=mmunlearner",), "LoRA.r"),
    (("forget_loss=manupd", *FULL), "forget_loss"),
    (("forget_loss=mip_editor", "LoRA.r=0", "tune_language_model=false"), "tune_language_model"),
    (("forget_loss=smfa", *FULL), "LoRA.r"),
    (("forget_loss=smfa", "method_args.k=0"), "method_args.k"),
])
def test_bad_settings_are_one_config_error(forget_cfg, overrides, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        validate(forget_cfg(*overrides))


def test_a_family_without_the_modules_is_refused_before_any_model_loads(forget_cfg, vanilla_dir, monkeypatch):
    import safeeraser.train.loop as loop

    family = family_of(str(vanilla_dir))

    class NoVisionMlp(type(family)):
        def mlp_neurons(self, names_and_modules):
            return {n: p for n, p in super().mlp_neurons(names_and_modules).items() if p != "vision"}

    with pytest.raises(ConfigError, match="no MLP linear layer in its vision part"):
        check_localized(parse_method("manu"), {}, NoVisionMlp(), str(vanilla_dir), deepspeed=False)
    with pytest.raises(ConfigError, match="DeepSpeed"):
        check_localized(parse_method("mmunlearner"), {}, family, str(vanilla_dir), deepspeed=True)

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("safeeraser.models.loading.family_of", lambda path: NoVisionMlp())
    monkeypatch.setattr("safeeraser.models.loading.load_model", no_loading)
    with pytest.raises(ConfigError, match="vision part"):
        loop.Trainer(forget_cfg("forget_loss=manu", *FULL)).setup()


def test_integrated_gradients_and_vision_zscores_are_the_hand_computed_ones(forget_cfg, vanilla_dir):
    cfg = forget_cfg("forget_loss=mip_editor", *FULL, "tune_vision_tower=true", "batch_size=2",
                     "method_args.ig_steps=4", "method_args.layer=1")  # RMU on the last layer: both layers scored
    method = parse_method("mip_editor")
    from safeeraser.train.model_setup import prepare_model

    model = prepare_model(load_model(str(vanilla_dir), "float32").eval(), cfg, family_of(str(vanilla_dir)))
    scoring, batches = _pass(cfg, model, method)
    scores = importance_for("integrated_gradients").score(scoring)
    modules = dict(model.named_modules())
    image_id = model.config.image_token_id

    # language layer 1: h * mean over alpha = 1/4 .. 4/4 of d(-NLL)/d(alpha h), on the text after the image
    down = modules["model.language_model.layers.1.mlp.down_proj"]
    expected = np.zeros(down.in_features)
    for batch in batches:
        b = batch["forget"]
        grads, acts = [], {}
        for alpha in (0.25, 0.5, 0.75, 1.0):
            def swap(module, args, alpha=alpha):
                acts["h"] = args[0].detach()
                acts["point"] = (args[0].detach() * alpha).requires_grad_(True)
                return (acts["point"],)
            handle = down.register_forward_pre_hook(swap)
            (g,) = torch.autograd.grad(-_hand_nll(model, b), acts["point"])
            handle.remove()
            grads.append(g.double().numpy())
        ig = acts["h"].double().numpy() * np.mean(grads, axis=0)
        ids, real = b["input_ids"].numpy(), b["attention_mask"].numpy()
        for r in range(ids.shape[0]):
            last = max(t for t in range(ids.shape[1]) if ids[r, t] == image_id)
            expected += ig[r, [t for t in range(last + 1, ids.shape[1]) if real[r, t]]].sum(0)
    got = scores["model.language_model.layers.1.mlp"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())

    # vision layer 0: the squared z-score over units of the mean |d(-NLL)/dh| over every patch
    fc2 = modules["model.vision_tower.encoder.layers.0.mlp.fc2"]
    total, count = np.zeros(fc2.in_features), 0
    for batch in batches:
        held = {}
        handle = fc2.register_forward_pre_hook(lambda m, a: (a[0].retain_grad(), held.__setitem__("h", a[0]))[0])
        model.zero_grad()
        (-_hand_nll(model, batch["forget"])).backward()
        handle.remove()
        g = held["h"].grad.reshape(-1, fc2.in_features).double().numpy()
        total, count = total + np.abs(g).sum(0), count + g.shape[0]
    mean = total / count
    np.testing.assert_allclose(scores["model.vision_tower.encoder.layers.0.mlp"].numpy(),
                               ((mean - mean.mean()) / mean.std()) ** 2, rtol=1e-3, atol=1e-3)
    # LLaVA reads the tower's second-to-last layer: its last layer carries nothing and is not scored
    assert "model.vision_tower.encoder.layers.1.mlp" not in scores
    # with RMU on layer 0, layer 1's units cannot change the loss: not scored, not trained
    scoring.args["layer"] = 0
    assert set(importance_for("integrated_gradients").score(scoring)) == {
        "model.language_model.layers.0.mlp", "model.vision_tower.encoder.layers.0.mlp"}


def test_mip_editor_trains_only_the_chosen_units_rows_and_forgets_more_than_it_loses(forget_cfg, vanilla_dir,
                                                                                   mini_dir):
    cfg = forget_cfg("forget_loss=mip_editorpd", *FULL, "tune_vision_tower=true", "method_args.per_layer=50",
                     "method_args.ig_steps=2", "weight_decay=0.1")
    out = run_training(cfg)
    chosen = json.loads((out / SUMMARY_FILE).read_text())["neurons"]
    assert {"model.language_model.layers.0.mlp", "model.vision_tower.encoder.layers.0.mlp"} <= set(chosen)
    assert all(len(rows) == 50 for rows in chosen.values())
    before = dict(load_model(str(vanilla_dir), "float32").named_parameters())
    after = dict(load_model(str(out), "float32").named_parameters())
    rows_of = {f"{mlp}.{proj}.{p}": rows for mlp, rows in chosen.items()
               for proj in ("fc1", "gate_proj", "up_proj") for p in ("weight", "bias")}
    moved_rows = 0
    for name, value in after.items():
        changed = (value != before[name]).reshape(value.shape[0], -1).any(1) if value.ndim else value != before[name]
        allowed = torch.zeros_like(changed)
        if name in rows_of:
            allowed[rows_of[name]] = True
        assert not (changed & ~allowed).any(), name  # nothing outside the chosen units' input rows moved
        moved_rows += int(changed.sum())
    assert moved_rows > 0
    start = {v: _nll(vanilla_dir, mini_dir, v) for v in ("forget", "retain")}
    end = {v: _nll(out, mini_dir, v) for v in ("forget", "retain")}
    rise = {v: end[v] - start[v] for v in end}
    assert rise["forget"] > max(0.1, 2 * rise["retain"]), (start, end)
    from safeeraser.infer.ckpt_infer import main as infer_main

    answers = out / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--checkpoint_path", str(out), "--output_file", str(answers), "--max_new_tokens", "4",
                       "--batch_size", "8"]) == 0


class _OnePart:
    @staticmethod
    def part_of(name):
        return "language"


def test_the_anchor_mask_merge_is_the_hand_computed_one(tmp_path):
    from peft import LoraConfig, get_peft_model

    from safeeraser.train.anchor_merge import masked_merge

    def fresh():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))

    config = LoraConfig(r=2, lora_alpha=4, target_modules=["0"], modules_to_save=["1"])
    anchor = get_peft_model(fresh(), config)
    for n, p in anchor.named_parameters():
        if "lora_" in n or "modules_to_save" in n:
            p.data = torch.randn_like(p)
    anchor.save_pretrained(tmp_path / "anchor")
    model = get_peft_model(fresh(), config)
    torch.manual_seed(1)  # the forgetting adapter's draws differ from the anchor's
    for n, p in model.named_parameters():
        if "lora_" in n or "modules_to_save" in n:
            p.data = torch.randn_like(p)
    base = fresh()
    W, H = base[0].weight.detach().numpy(), base[1].weight.detach().numpy()
    lora = {n.split("base_model.model.")[1]: p.detach().numpy() for n, p in model.named_parameters()}
    a_lora = {n.split("base_model.model.")[1]: p.detach().numpy() for n, p in anchor.named_parameters()}
    d_f = lora["0.lora_B.default.weight"] @ lora["0.lora_A.default.weight"] * 2.0  # alpha / r
    d_a = a_lora["0.lora_B.default.weight"] @ a_lora["0.lora_A.default.weight"] * 2.0
    h_f = lora["1.modules_to_save.default.weight"] - H
    h_a = a_lora["1.modules_to_save.default.weight"] - H

    def keep(f, a, k):
        rho = np.linalg.norm(f) / np.linalg.norm(a)
        return ~((f * a < 0) & (np.abs(f) > k * rho * np.abs(a)))

    merged, counts = masked_merge(model, tmp_path / "anchor", 0.5, _OnePart())
    np.testing.assert_allclose(merged[0].weight.detach().numpy(), W + d_f * keep(d_f, d_a, 0.5), rtol=1e-6, atol=1e-6)
    kept = keep(h_f, h_a, 0.5)
    trained_head = lora["1.modules_to_save.default.weight"]
    np.testing.assert_array_equal(merged[1].weight.detach().numpy(), np.where(kept, trained_head, H))
    assert 0 < counts["language"][0] < counts["language"][1] == 4 * 5 + 3 * 4 + 3  # + the head's bias
    assert type(merged[0]) is torch.nn.Linear  # a plain model: no adapter left


def test_smfa_trains_its_anchor_then_saves_the_masked_merge(forget_cfg, vanilla_dir, mini_dir, tmp_path, monkeypatch):
    from safeeraser.infer.ckpt_infer import main as infer_main
    from safeeraser.train import anchor_merge

    cfg = forget_cfg("forget_loss=smfapd", "max_train_steps=8", "lr=5e-3", "lr_scheduler_type=constant",
                     "warmup_ratio=0")
    out = run_training(cfg)
    assert (out / "anchor" / "adapter_model.safetensors").exists()
    assert (out / "forget_adapter" / "adapter_model.safetensors").exists()
    assert not (out / "adapter_config.json").exists()  # the run's model is the merged one, a full folder
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert 0 < summary["selected"]["language"]["chosen"] < summary["selected"]["language"]["of"]
    start = {v: _nll(vanilla_dir, mini_dir, v) for v in ("idk", "forget", "retain")}
    end = {v: _nll(out, mini_dir, v) for v in ("idk", "forget", "retain")}
    assert start["idk"] - end["idk"] > max(1.0, 2 * (end["retain"] - start["retain"])), (start, end)
    assert end["forget"] - start["forget"] > max(0.1, 2 * (end["retain"] - start["retain"])), (start, end)
    answers = tmp_path / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--checkpoint_path", str(out), "--output_file", str(answers), "--max_new_tokens", "4",
                       "--batch_size", "8"]) == 0
    # a complete anchor made with the same settings is reused, not trained again
    monkeypatch.setattr("safeeraser.train.loop.Trainer.run", lambda self: pytest.fail("the anchor trained again"))
    cfg.tracking.overwrite = False
    assert anchor_merge.train_anchor(cfg, parse_method("smfapd"), None) == out / "anchor"


def test_a_run_that_replaces_a_finished_one_is_not_complete_until_it_ends(forget_cfg, tmp_path):
    """What keeps SMFA from reusing an anchor whose retrain was cut off: the replaced run's completion mark
    goes when the new run starts."""
    cfg = forget_cfg("forget_loss=gd", f"save_dir={tmp_path / 'run'}")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_complete.json").write_text("{}")
    Trainer(cfg).setup()
    assert not (tmp_path / "run" / "run_complete.json").exists()
