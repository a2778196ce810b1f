import pytest

from safeeraser.train.config import ConfigError, load_config


def test_reference_keys_and_interpolation(mini_dir):
    cfg = load_config("forget_lora.yaml", [f"data_path={mini_dir / 'all_train.json'}",
                                           f"idk_path={mini_dir / 'prompt.json'}", "forget_loss=gdpd", "lr=2e-4"])
    assert cfg.save_dir == "ckpt_results/llava-7b/gdpd_0.0002_all_train_10"
    assert cfg.LoRA.r == 32 and cfg.LoRA.alpha == 256 and cfg.gradient_accumulation_steps * cfg.batch_size == 16


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
    assert cfg.model_path == "Qwen/Qwen2.5-VL-7B-Instruct" and cfg.max_length == 2048  # over the file's llava
    assert cfg.lr == 1e-4  # what the preset does not set stays the file's
    cfg = load_config("forget_lora.yaml", ["preset=qwen2.5-vl-7b", "max_length=512"], validate_paths=False)
    assert cfg.max_length == 512  # an explicit override wins
    with pytest.raises(ConfigError, match="unknown preset 'nope'. Valid choices: .*gemma-3-4b"):
        load_config("forget_lora.yaml", ["preset=nope"], validate_paths=False)


def test_lora_targets_are_names_or_a_regex():
    cfg = load_config("forget_lora.yaml", ["LoRA.target_modules=[q_proj,v_proj]"], validate_paths=False)
    assert list(cfg.LoRA.target_modules) == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="LoRA.target_modules"):
        load_config("forget_lora.yaml", ["LoRA.target_modules=[]"], validate_paths=False)
