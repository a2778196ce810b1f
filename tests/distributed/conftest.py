"""Fixtures for the multi-process tests: the one-process runs they are compared with, and launched runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from dist_helpers import ONE, launch, run_overrides
from fixture_cache import built_once


@pytest.fixture(scope="session")
def dist_root(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def one_process_run(vanilla_dir, mini_dir, dist_root):
    """one_process_run(method, *overrides): the single-process run of a method (batch 4 x accumulation 2),
    trained once per session."""
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    done: dict[tuple, Path] = {}

    def get(method: str, *extra: str) -> Path:
        key = (method, *extra)
        if key not in done:
            out = dist_root / f"one-{method}-{len(done)}"
            cfg = load_config("forget_tiny.yaml", run_overrides(vanilla_dir, mini_dir, method, out, ONE["batch_size"],
                                                             ONE["gradient_accumulation_steps"]) + list(extra))
            done[key] = run_training(cfg)
        return done[key]

    return get


@pytest.fixture(scope="session")
def launched_run(vanilla_dir, mini_dir, tmp_path_factory):
    """launched_run(name, config_file, method, batch_size, gas, *overrides): a two-process run under an
    accelerate config, launched once per test run under its name (tests that compare with the same run
    share it, across xdist workers too: a launch is ~16 s of CPU)."""
    done: dict[str, tuple] = {}

    def run(name: str, config_file: str, method: str, batch_size: int, gas: int, *extra: str) -> Path:
        args = (config_file, method, batch_size, gas, *extra)
        if name in done:
            assert done[name][0] == args, f"launched run '{name}' asked for with other settings"
            return done[name][1]
        out = built_once(tmp_path_factory, f"launched-{name}", lambda save_dir: launch(
            config_file, run_overrides(vanilla_dir, mini_dir, method, save_dir, batch_size, gas) + list(extra)))
        done[name] = (args, out)
        return out

    return run
