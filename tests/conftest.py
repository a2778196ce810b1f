"""Shared fixtures: a small mini benchmark and a tiny model, built once per test session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory):
    from safeeraser.data.mini import make_mini

    out = tmp_path_factory.mktemp("mini")
    make_mini(out, seed=0, train_per_category=2, val_per_category=1)
    return out


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from safeeraser.models.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def processor(tiny_dir):
    from safeeraser.models.loading import load_processor

    return load_processor(str(tiny_dir))
