"""Fixtures for the multi-process tests: the one-process runs they are compared with, and launched runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from dist_helpers import CPU_MULTI, GDPD_HALF_BATCH, LOCALIZED, ONE, launch, launch_runs, run_overrides
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


@pytest.fixture(scope="session")
def cpu_multi_runs(vanilla_dir, mini_dir, tiny_family_dir, tmp_path_factory):
    """The two-process runs the tests here compare with, one after the other in the processes of ONE launch
    under config/accelerate/cpu_multi.yaml (a launch is ~16 s of CPU, a run's training about a second; made once
    per test run, across xdist workers too). Each run starts as forget.py starts one, from its config; the one
    that must start in processes of its own, a resume, is test_dist_checkpoint's launch.
      "gdpd-whole":   GDPD_HALF_BATCH's gdpd run, uninterrupted (test_dist_ddp; test_dist_checkpoint's reference)
      "gdpd-stopped": the same run stopped after step 2, with a checkpoint there (test_dist_checkpoint resumes
                      a copy of it)
      "qwen-klpd":    klpd on the tiny qwen2_vl model, 2 x (4 x 1) under the warm-up and cosine schedule
                      (test_dist_ddp)
      LOCALIZED:      the methods that restrict where the model changes, two steps each (test_dist_localized)
    and "stdout", the launch's output."""
    _, config_file, method, batch_size, gas, *extra = GDPD_HALF_BATCH
    assert config_file == CPU_MULTI

    def build(folder: Path):
        runs = {
            "gdpd-whole": run_overrides(vanilla_dir, mini_dir, method, folder / "gdpd-whole", batch_size, gas) + extra,
            "gdpd-stopped": run_overrides(vanilla_dir, mini_dir, method, folder / "gdpd-stopped", batch_size, gas)
            + extra + ["max_train_steps=2", "save_steps=2"],
            "qwen-klpd": run_overrides(tiny_family_dir("qwen2_vl"), mini_dir, "klpd", folder / "qwen-klpd",
                                       ONE["batch_size"], ONE["gradient_accumulation_steps"] // 2),
            **{name: run_overrides(vanilla_dir, mini_dir, method, folder / name, batch_size, gas) + more
               for name, (method, more) in LOCALIZED.items()},
        }
        proc = launch_runs(CPU_MULTI, list(runs.values()))
        (folder / "launch.stdout").write_text(proc.stdout)

    out = built_once(tmp_path_factory, "launched-cpu-multi", build)
    return {**{name: out / name for name in ("gdpd-whole", "gdpd-stopped", "qwen-klpd", *LOCALIZED)},
            "stdout": (out / "launch.stdout").read_text()}
