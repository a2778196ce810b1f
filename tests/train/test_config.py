import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from safeeraser.train.config import FLAT, ConfigError, load_config


def test_reference_keys_and_interpolation(mini_dir):
    cfg = load_config("forget_lora.yaml", [f"data_path={mini_dir / 'all_train.json'}",
                                           f"idk_path={mini_dir / 'prompt.json'}", "forget_loss=gdpd", "lr=2e-4"])
    assert cfg.tracking.save_dir == "ckpt_results/llava-7b/gdpd_0.0002_all_train_10"
    assert cfg.LoRA.r == 32 and cfg.LoRA.alpha == 256 and cfg.optim.gradient_accumulation_steps * cfg.optim.batch_size == 16


@pytest.mark.parametrize("override, message", [
    ("learning_rate=1", "unknown key 'learning_rate'. Valid keys: model_family"),
    ("forget_loss=gax", "key 'forget_loss': unknown loss 'gax'. Valid choices: dpo, ga, gd"),
    ("lr=-1", "key 'lr': must be positive"),
    ("lr_scheduler_type=step", "key 'lr_scheduler_type': unknown 'step'. Valid choices: cosine"),
    ("data_path=/no/such.json", "key 'data_path': file '/no/such.json' not found"),
    ("loss_weights.pd=0.3", "key 'loss_weights.pd': 'ga' has no term 'pd'"),
    ("batch_size=two", "key 'batch_size'"),
])
def test_bad_values_fail_with_the_key(mini_dir, override, message):
    with pytest.raises(ConfigError) as err:
        load_config("forget_lora.yaml", [f"data_path={mini_dir / 'all_train.json'}",
                                         f"idk_path={mini_dir / 'prompt.json'}", override])
    assert message in str(err.value)


def test_bad_config_fails_before_any_model_loads(mini_dir, capsys):
    from safeeraser.cli import main

    # model_path does not exist: the config error must come first, as one line, exit code 2
    rc = main(["forget", "model_path=/nonexistent", "forget_loss=nope", f"data_path={mini_dir / 'all_train.json'}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: key 'forget_loss'") and "Traceback" not in err


def test_model_preset_sits_between_the_file_and_the_overrides():
    from safeeraser.train.config import presets

    assert {"llava-1.5-7b", "qwen2.5-vl-7b", "gemma-3-4b", "internvl3-8b"} <= set(presets())
    cfg = load_config("forget_lora.yaml", ["preset=qwen2.5-vl-7b"], validate_paths=False)
    assert cfg.model.model_path == "Qwen/Qwen2.5-VL-7B-Instruct" and cfg.data.max_length == 2048  # over the file's llava
    assert cfg.optim.lr == 1e-4  # what the preset does not set stays the file's
    cfg = load_config("forget_lora.yaml", ["preset=qwen2.5-vl-7b", "max_length=512"], validate_paths=False)
    assert cfg.data.max_length == 512  # an explicit override wins
    with pytest.raises(ConfigError, match="unknown preset 'nope'. Valid choices: .*gemma-3-4b"):
        load_config("forget_lora.yaml", ["preset=nope"], validate_paths=False)


def test_a_preset_named_in_the_file_applies_and_the_overrides_name_another(tmp_path, monkeypatch):
    """The preset is read from the last layer that names it (the overrides over the file), an interpolation
    as the merged config resolves it."""
    (tmp_path / "mine.yaml").write_text("forget_loss: gdpd\nlr: 0.5\npreset: gemma-3-4b\n")
    cfg = load_config(tmp_path / "mine.yaml", [], validate_paths=False)
    assert cfg.model.model_path == "google/gemma-3-4b-it" and cfg.optim.lr == 0.5
    cfg = load_config(tmp_path / "mine.yaml", ["preset=qwen2.5-vl-7b"], validate_paths=False)
    assert cfg.model.model_path == "Qwen/Qwen2.5-VL-7B-Instruct"
    monkeypatch.setenv("SAFEERASER_TEST_PRESET", "internvl3-8b")
    (tmp_path / "env.yaml").write_text("preset: ${oc.env:SAFEERASER_TEST_PRESET}\n")
    assert "InternVL3" in load_config(tmp_path / "env.yaml", [], validate_paths=False).model.model_path
    # not a string: converted as the schema's string field converts it, or one error naming the key
    gemma = Path(__file__).resolve().parents[2] / "config" / "models" / "gemma-3-4b.yaml"
    assert load_config(None, validate_paths=False, settings={"preset": gemma}).model.model_path == "google/gemma-3-4b-it"
    with pytest.raises(ConfigError, match="unknown preset '123'"):
        load_config(None, ["preset=123"], validate_paths=False)
    with pytest.raises(ConfigError, match="key 'preset'"):
        load_config(None, ["preset=[a,b]"], validate_paths=False)


def test_lora_targets_are_names_or_a_regex():
    cfg = load_config("forget_lora.yaml", ["LoRA.target_modules=[q_proj,v_proj]"], validate_paths=False)
    assert list(cfg.LoRA.target_modules) == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="LoRA.target_modules"):
        load_config("forget_lora.yaml", ["LoRA.target_modules=[]"], validate_paths=False)


# Every key of the reference's config/forget_lora.yaml with its value there (SPEC.md's defaults)
REFERENCE_FORGET_LORA = {
    "model_family": "llava-v1.5-vicuna", "model_path": "llava-hf/llava-1.5-7b-hf",
    "LoRA": {"r": 32, "alpha": 256, "dropout": 0.05}, "lr": 1e-4, "split": "all",
    "data_path": "dataset/all_train.json", "batch_size": 1, "gradient_accumulation_steps": 16, "num_epochs": 10,
    "forget_loss": "ga", "tune_vision_tower": False, "tune_mm_projector": True, "tune_language_model": False,
    "max_grad_norm": 1.0, "save_dir": "ckpt_results/llava-7b/${forget_loss}_${lr}_${split}_${num_epochs}",
    "save_steps": 0, "overwrite_dir": False, "weight_decay": 0.01, "save_model": True, "eval_while_train": False,
    "eval_only": False, "seed": 233, "workers": 4, "lr_scheduler_type": "cosine", "warmup_ratio": 0.06,
    "max_train_steps": -1, "report_to": "wandb", "resume_from_checkpoint": "",
}
# where a reference key lands here, and the value it means, where either differs
READ_AS = {"overwrite_dir": ("overwrite", False), "max_train_steps": ("max_train_steps", 0),
           "save_dir": ("save_dir", "ckpt_results/llava-7b/ga_0.0001_all_10")}


def _check_reference_keys(cfg, values: dict) -> None:
    for key, value in values.items():
        if key in ("save_model", "eval_while_train", "eval_only"):
            continue  # no setting here: accepted at the one value a run here has (tested below)
        ours, expected = READ_AS.get(key, (key, value))
        got = OmegaConf.to_container(cfg.LoRA) if key == "LoRA" else cfg[FLAT[ours]][ours]
        if key == "LoRA":
            got = {k: got[k] for k in value}
        assert got == expected, key


def test_the_references_forget_lora_yaml_loads_key_by_key(tmp_path):
    import yaml

    path = tmp_path / "forget_lora.yaml"
    path.write_text(yaml.safe_dump(REFERENCE_FORGET_LORA))
    _check_reference_keys(load_config(path, validate_paths=False), REFERENCE_FORGET_LORA)
    # its keys on the command line too, and the ones with no setting here refuse any other value
    assert load_config(path, ["overwrite_dir=true"], validate_paths=False).tracking.overwrite is True
    for key, value, says in [("save_model", "false", "the trained adapter is always saved"),
                             ("eval_while_train", "true", "eval_steps"), ("eval_only", "true", "ckpt_infer.py")]:
        with pytest.raises(ConfigError, match=rf"overrides: key '{key}': only .* supported \(.*{says}"):
            load_config(path, [f"{key}={value}"], validate_paths=False)


@pytest.mark.skipif(not os.environ.get("SAFEERASER_REFERENCE_DIR"), reason="no checkout of the reference given")
def test_a_checkouts_own_forget_lora_yaml_loads_key_by_key():
    path = Path(os.environ["SAFEERASER_REFERENCE_DIR"]) / "config" / "forget_lora.yaml"
    values = OmegaConf.to_container(OmegaConf.load(path))  # read as the loader reads YAML (1e-4 a float)
    assert set(values) == set(REFERENCE_FORGET_LORA)
    _check_reference_keys(load_config(path, validate_paths=False), values)


def test_keys_are_read_flat_or_in_their_section_and_runs_keep_their_identity():
    from safeeraser.train.config import SECTIONS, flat_config, identity_config, resume_differences

    flat = load_config("forget_tiny.yaml", ["lr=3e-3", "forget_loss=npo", "seed=5"], validate_paths=False)
    nested = load_config("forget_tiny.yaml", ["optim.lr=3e-3", "method.forget_loss=npo", "optim.seed=5"],
                         validate_paths=False)
    assert OmegaConf.to_container(flat) == OmegaConf.to_container(nested)
    assert flat.optim.lr == 3e-3 and flat.method.forget_loss == "npo" and flat.optim.seed == 5
    # interpolations of flat keys follow them into their sections
    assert flat.tracking.save_dir.endswith("npo_0.003_all_train_4")
    # every key lives in one section, named as the reference names it
    names = [k for section in SECTIONS.values() for k in section.__dataclass_fields__]
    assert len(names) == len(set(names)) and {"lr", "forget_loss", "save_dir", "tune_mm_projector"} <= set(names)
    # a run saved with the flat config (before the sections) is the same run: same identity, no difference
    as_saved = flat_config(OmegaConf.to_container(flat, resolve=True))
    assert "optim" not in as_saved and as_saved["lr"] == 3e-3 and as_saved["LoRA"]["r"] == flat.LoRA.r
    assert identity_config(as_saved) == identity_config(OmegaConf.to_container(flat, resolve=True))
    assert resume_differences(as_saved, flat) == []
    assert resume_differences({**as_saved, "lr": 1e-3}, flat) == ["lr: 0.001 -> 0.003"]
    with pytest.raises(ConfigError, match="unknown key 'optim.lrr'"):
        load_config("forget_tiny.yaml", ["optim.lrr=1"], validate_paths=False)
    with pytest.raises(ConfigError, match=r"unknown key 'data.lr' \(lr is a key of 'optim'\)"):
        load_config("forget_tiny.yaml", ["data.lr=1e-3"], validate_paths=False)
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'. Valid keys: model_family, "):
        load_config("forget_tiny.yaml", ["learning_rate=1"], validate_paths=False)
