"""Fixtures for the multi-process tests: the one-process runs they are compared with, and launched runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from dist_helpers import ONE, launch, run_overrides


@pytest.fixture(scope="session")
def dist_root(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def one_process_run(vanilla_dir, mini_dir, dist_root):
    """The single-process run of a method (batch 4 x accumulation 2), trained once per session."""
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    done: dict[str, Path] = {}

    def get(method: str) -> Path:
        if method not in done:
            out = dist_root / f"one-{method}"
            cfg = load_config("forget_tiny.yaml", run_overrides(vanilla_dir, mini_dir, method, out,
                                                             ONE["batch_size"], ONE["gradient_accumulation_steps"]))
            done[method] = run_training(cfg)
        return done[method]

    return get


@pytest.fixture(scope="session")
def launched_run(vanilla_dir, mini_dir, dist_root):
    """A two-process run under an accelerate config, with the given per-process batch and accumulation."""

    def run(name: str, config_file: str, method: str, batch_size: int, gas: int) -> Path:
        out = dist_root / name
        launch(config_file, run_overrides(vanilla_dir, mini_dir, method, out, batch_size, gas))
        return out

    return run
