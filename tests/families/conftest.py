"""Tiny models of every registered family, built once per test session (the TRL way: one trainer test
parametrized over tiny models of many families)."""
from __future__ import annotations

import pytest

from safeeraser.models.families import REGISTRY

FAMILIES = sorted(REGISTRY)


@pytest.fixture(params=FAMILIES)
def family_name(request):
    return request.param


@pytest.fixture
def family_cfg(tiny_family_dir, mini_dir, tmp_path):
    """A forget config for a family's tiny model on the small mini benchmark."""
    def make(name, *overrides):
        from safeeraser.train.config import load_config

        return load_config("forget_tiny.yaml", [
            f"model_path={tiny_family_dir(name)}", f"data_path={mini_dir / 'all_train.json'}",
            f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / 'run'}", "batch_size=4",
            "gradient_accumulation_steps=1", "overwrite=true", *overrides,
        ])
    return make
