import pytest

from safeeraser.train.config import load_config


@pytest.fixture(scope="session")
def vanilla_dir(tmp_path_factory, tiny_dir, mini_dir):
    """The tiny model briefly fine-tuned on the mini benchmark: it answers, so forgetting is measurable."""
    from safeeraser.train.loop import run_training

    out = tmp_path_factory.mktemp("vanilla")
    cfg = load_config("finetune_tiny.yaml", [
        f"model_path={tiny_dir}", f"data_path=[{mini_dir / 'all_train.json'},{mini_dir / 'all_val.json'}]",
        f"save_dir={out}", "num_epochs=20", "batch_size=16", "lr=3e-3", "overwrite=true",
    ])
    run_training(cfg)
    return out


@pytest.fixture
def forget_cfg(vanilla_dir, mini_dir, tmp_path):
    def make(*overrides):
        return load_config("forget_tiny.yaml", [
            f"model_path={vanilla_dir}", f"data_path={mini_dir / 'all_train.json'}",
            f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / 'run'}", "batch_size=4",
            "gradient_accumulation_steps=1", "overwrite=true", *overrides,
        ])
    return make
