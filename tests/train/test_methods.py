import json

import pytest
import torch

from safeeraser.data.records import load_benchmark
from safeeraser.data.views import Example, forget_items, load_refusals
from safeeraser.models.loading import load_model, load_processor
from safeeraser.train.evaluate import mean_nll
from safeeraser.train.loop import TrainingDiverged, run_training
from safeeraser.train.methods import METHOD_NAMES, parse_method


def _views(mini_dir):
    items = forget_items(load_benchmark(mini_dir / "all_train.json"))
    refusals = load_refusals(mini_dir / "prompt.json")
    return {
        "forget": [i.forget for i in items],
        "pd": [i.pd for i in items],
        "retain": [r for i in items for r in i.retain_pool],
        "idk": [Example(i.forget.image, i.forget.question, refusals[0]) for i in items],
    }


def _nlls(model_dir, adapter, mini_dir):
    from peft import PeftModel

    model = load_model(str(model_dir), "float32")
    if adapter:
        model = PeftModel.from_pretrained(model, str(adapter))
    proc = load_processor(str(model_dir))
    return {k: mean_nll(model, proc, v) for k, v in _views(mini_dir).items()}


# the methods that restrict the model's own weights (mmunlearner, manu) save full weights:
# test_localized_methods.py trains and loads them
@pytest.mark.parametrize("name", [n for n in METHOD_NAMES if n != "sft" and not parse_method(n).restriction])
def test_every_method_trains_and_saves_a_loadable_adapter(forget_cfg, name):
    from peft import PeftModel

    cfg = forget_cfg(f"forget_loss={name}", "max_train_steps=2")
    out = run_training(cfg)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss/total"])) for r in rows)
    model = PeftModel.from_pretrained(load_model(str(cfg.model.model_path), "float32"), str(out))
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and all("language_model" in n for n in lora)  # never the CLIP tower
    assert (out / "config.yaml").read_text().count(f"forget_loss: {name}") == 1


@pytest.fixture(scope="module")
def start(vanilla_dir, mini_dir):
    return _nlls(vanilla_dir, None, mini_dir)


FAST = ("max_train_steps=8", "lr=5e-3", "lr_scheduler_type=constant", "warmup_ratio=0")


def _train(forget_cfg, vanilla_dir, mini_dir, *overrides):
    out = run_training(forget_cfg(*overrides))
    return _nlls(vanilla_dir, out, mini_dir)


def test_ga_raises_forget_nll(forget_cfg, vanilla_dir, mini_dir, start):
    end = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=ga", *FAST)
    assert end["forget"] > start["forget"] + 1.0


def test_gd_keeps_retain_while_forgetting(forget_cfg, vanilla_dir, mini_dir, start):
    end = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=gd", *FAST)
    assert end["forget"] > start["forget"] + 1.0
    assert end["retain"] < start["retain"] + 0.25 * (end["forget"] - start["forget"])


def test_po_raises_refusal_likelihood(forget_cfg, vanilla_dir, mini_dir, start):
    end = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=po", *FAST)
    assert end["idk"] < start["idk"] - 1.0


def test_idkdpo_prefers_the_refusal_and_keeps_retain(forget_cfg, vanilla_dir, mini_dir, start):
    end = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=idkdpo", *FAST)
    assert end["idk"] < start["idk"] - 1.0 and end["forget"] > start["forget"] + 0.5
    assert end["retain"] < start["retain"] + 0.25 * (end["forget"] - start["forget"])


def test_dpo_alone_prefers_the_refusal(forget_cfg, vanilla_dir, mini_dir, start):
    end = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=dpo", *FAST)
    # the margin grows from both sides: the refusal up, the harmful answer down
    assert end["idk"] < start["idk"] - 0.5 and end["forget"] > start["forget"] + 1.0


@pytest.mark.parametrize("name, args", [
    # the paper's retain weight (1200) and steering scale are for 7B activations; the tiny model's are smaller
    ("rmu", ("method_args.alpha=1",)),
    # the vanilla tiny model is so confident that lowering the answer logit by 3 leaves it on top; the
    # paper's UNDIAL has no retain term, the option adds it
    ("undial", ("method_args.strength=10", "loss_weights.retain=1")),
    # six steps an epoch: max (from the teacher: no gradient yet), min, max, then min epochs
    ("scrub", ("num_epochs=4", "max_train_steps=0", "lr=1e-3")),
    ("wga", ()),
])
def test_representation_and_distillation_methods_forget_and_keep_retain(forget_cfg, vanilla_dir, mini_dir, start,
                                                                         name, args):
    end = _train(forget_cfg, vanilla_dir, mini_dir, f"forget_loss={name}", *FAST, *args)
    assert end["forget"] > start["forget"] + 1.0
    assert end["retain"] < start["retain"] + 0.25 * (end["forget"] - start["forget"])


def test_rmu_steers_the_chosen_layer_towards_the_fixed_direction(forget_cfg, vanilla_dir, mini_dir):
    """The forget-side RMU term (distance of layer activations to steering x u) falls as it trains."""
    out = run_training(forget_cfg("forget_loss=rmu", "method_args.alpha=1", *FAST))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["loss/forget"] < 0.8 * rows[0]["loss/forget"]


def test_scrub_runs_max_epochs_then_min_epochs_as_the_paper(forget_cfg):
    # msteps=2: epochs 0 and 2 max, 1, 3 and 4 min (the mini's 24 forget items: 2 steps an epoch)
    out = run_training(forget_cfg("forget_loss=scrubpd", "batch_size=12", "num_epochs=5", "method_args.msteps=2",
                                  "max_train_steps=0"))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    parts = {r["epoch"]: sorted(k for k in r if k.startswith("loss/") and k != "loss/total") for r in rows}
    minimum, maximum = ["loss/pd", "loss/retain", "loss/retain_kl"], ["loss/forget_kl", "loss/pd"]
    assert parts == {0: maximum, 1: minimum, 2: maximum, 3: minimum, 4: minimum}
    assert len(rows) == 5 * sum(r["epoch"] == 0 for r in rows) and (out / "loss_curves.png").stat().st_size > 0
    assert rows[0]["loss/forget_kl"] == 0.0  # the student starts as the teacher: the max KL starts at 0


def test_unknown_method_argument_is_a_config_error(forget_cfg):
    from safeeraser.train.config import ConfigError

    with pytest.raises(ConfigError, match="'dpo' has no argument 'alpha'. Its arguments: beta"):
        forget_cfg("forget_loss=dpo", "method_args.alpha=1")
    with pytest.raises(ConfigError, match="method_args.layer': 9, but the language model's layers are 0..1"):
        run_training(forget_cfg("forget_loss=rmu", "method_args.layer=9", "max_train_steps=1"))


def test_pd_term_holds_sd_answers(forget_cfg, vanilla_dir, mini_dir, start):
    ga = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=ga", *FAST)
    gapd = _train(forget_cfg, vanilla_dir, mini_dir, "forget_loss=gapd", *FAST,
                  "loss_weights.pd=1.0")
    assert gapd["forget"] > start["forget"] + 1.0
    assert gapd["pd"] - start["pd"] < 0.5 * (ga["pd"] - start["pd"])


def test_nan_loss_stops_with_a_clear_message(forget_cfg):
    with pytest.raises(TrainingDiverged, match="training diverged"):
        run_training(forget_cfg("forget_loss=ga", "max_train_steps=2", "loss_weights.forget=.nan"))


def _losses(out):
    return [json.loads(line)["loss/total"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_gradient_checkpointing_with_lora_gives_the_same_losses(forget_cfg, tmp_path):
    plain = _losses(run_training(forget_cfg("forget_loss=gdpd", "max_train_steps=3", f"save_dir={tmp_path / 'a'}")))
    ckpt = _losses(run_training(forget_cfg("forget_loss=gdpd", "max_train_steps=3", "gradient_checkpointing=true",
                                           f"save_dir={tmp_path / 'b'}")))
    assert ckpt == pytest.approx(plain, abs=1e-5)


@pytest.mark.heavy
def test_bf16_mixed_precision_runs(forget_cfg, tmp_path, monkeypatch):
    """Mixed precision is fixed per process by accelerate: one AcceleratorState, shared by every Accelerator of
    the process, refuses another setting once made. The bf16 run gets a state of its own instead of a process
    of its own (a process importing torch, transformers and peft is ~7 s of CPU, the run ~0.5 s): monkeypatch
    swaps in an empty shared state for it and puts the process's back after, so the tests before and after
    keep theirs. It runs as forget.py runs it (the forget command, its config from a file) in this process; a
    swap that left the fp32 state in force would fail below: accelerate refusing the change, or fp32's losses."""
    from accelerate.state import AcceleratorState
    from omegaconf import OmegaConf

    from safeeraser.cli import main

    fp32 = _losses(run_training(forget_cfg("forget_loss=gd", "max_train_steps=2", f"save_dir={tmp_path / 'a'}")))
    cfg = forget_cfg("forget_loss=gd", "max_train_steps=2", "mixed_precision=bf16", f"save_dir={tmp_path / 'b'}")
    (tmp_path / "bf16.yaml").write_text(OmegaConf.to_yaml(cfg))
    monkeypatch.setattr(AcceleratorState, "_shared_state", {})
    assert main(["forget", "--config", str(tmp_path / "bf16.yaml")]) == 0
    assert AcceleratorState().mixed_precision == "bf16"
    bf16 = _losses(tmp_path / "b")
    assert bf16 != fp32  # autocast really ran in bf16 ...
    assert bf16 == pytest.approx(fp32, rel=0.05, abs=0.05)  # ... and computed nearly the same losses
