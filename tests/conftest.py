"""Shared fixtures: a small mini benchmark and a tiny model, built once per test run (once for all xdist
workers: see `built_once`); one torch thread."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixture_cache import built_once

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# One torch thread in the test process and in the processes the tests start (OMP_NUM_THREADS). The tiny
# models' ops are too small to share out, and on a busy machine a second OpenMP thread waiting for a core
# stalls every op: the vanilla fixture's fine-tune took 182 s with two threads at load 2-4 on 2 cores, 19 s
# with one, and the same answers; on an idle machine one thread is as fast. A CPU's results depend on the
# thread count, so one thread also makes them the same on every machine. SAFEERASER_TEST_THREADS=N sets
# another count (0: torch's default).
TEST_THREADS = int(os.environ.get("SAFEERASER_TEST_THREADS", "1"))
if TEST_THREADS > 0:
    os.environ.setdefault("OMP_NUM_THREADS", str(TEST_THREADS))


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: one of the suite's slowest tests (seconds of CPU or of waiting); "
                                       "run first, so that parallel workers end together")


def pytest_collection_modifyitems(config, items):
    """The heavy tests first, then the tests that do not need the shared vanilla fine-tune, then those that
    do, each group in its files' order. pytest-xdist hands tests out in this order, so the two workers begin
    with the long ones and the short ones fill in at the end (without it, a heavy test collected last runs
    alone while the other worker idles); and while the first worker fine-tunes the vanilla model (~15 s, for
    the first heavy test), the other runs tests that need none instead of waiting on its lock (built_once)."""
    items.sort(key=lambda item: (item.get_closest_marker("heavy") is None,
                                 "vanilla_dir" in getattr(item, "fixturenames", ())))


@pytest.fixture(scope="session", autouse=True)
def torch_threads():
    """The session's torch thread count, set before any other fixture builds a model."""
    if TEST_THREADS > 0:
        import torch

        torch.set_num_threads(TEST_THREADS)
    return TEST_THREADS


REAL_FIGURES = os.environ.get("SAFEERASER_TEST_REAL_FIGURES", "") not in ("", "0")


def _loss_curve_layout(rows, title=""):
    # what decides the figure's code path: how many loss panels, whether the in-training NLL and rate
    # panels are there, a title (the panels' names change only their titles' text)
    keys = list(dict.fromkeys(k for r in rows for k in r if k.startswith(("loss/", "eval/"))))
    evals = [k for k in keys if k.startswith("eval/")]
    return (len(keys) - len(evals), any(k.endswith("_nll") for k in evals),
            any(not k.endswith("_nll") for k in evals), bool(title))


def _report_layout(rows, title=""):
    return len(rows), any(r.get("runs") for r in rows)  # the figure's height; the seeds' dots and legend entry


# (module, function, layout): figures the code under test draws, each layout drawn for real once per process
_FIGURES = [("safeeraser.train.loop", "plot_loss_curves", _loss_curve_layout),
            ("safeeraser.pipeline.report", "plot_report", _report_layout)]
_DRAWN: dict[tuple, bytes] = {}


@pytest.fixture(autouse=True)
def figures_drawn_once_per_layout(monkeypatch):
    """A training run ends by drawing its loss curves (train/plots.py): ~0.25 s of matplotlib, a third of a
    short tiny-model run, and the suite makes ~150 runs in its own processes; a grid's report draws its figure
    (pipeline/report.py, ~0.3 s) ~40 times. Here, in the test processes, each figure's layout (the loss curves:
    how many loss panels, with or without the in-training NLL panel, the rate panel, a title; the report: its
    rows, with or without seeds) is drawn for real the first time, and a later figure of the same layout gets
    those bytes: every layout still goes through the plotting code, every run and report still has its file, of
    the size its layout gives (its titles and bars may be another run's). The plotting's own tests call the
    functions directly, which is left alone. SAFEERASER_TEST_REAL_FIGURES=1 draws every figure. Applied
    to a module once it is imported (a test that imports it later draws its figures for real)."""
    import sys

    if REAL_FIGURES:
        return
    for module_name, function, layout_of in _FIGURES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        real = getattr(module, function)

        def draw(rows, out, title="", real=real, function=function, layout_of=layout_of):
            layout = (function, *layout_of(rows, title))
            if not rows or layout not in _DRAWN:
                made = real(rows, out, title)
                if made is not None:
                    _DRAWN[layout] = Path(made).read_bytes()
                return made
            out = Path(out)
            tmp = out.with_name(f".{out.name}.tmp")  # as plots does: renamed when whole
            tmp.write_bytes(_DRAWN[layout])
            os.replace(tmp, out)
            return out

        monkeypatch.setattr(module, function, draw)


@pytest.fixture(scope="session")
def ray_exclusive(tmp_path_factory):
    """A lock held by whichever test has a local Ray cluster up or must find none, across xdist workers:
    a cluster one worker starts is found by another's `address=auto` (Ray records the running cluster
    machine-wide), and that test then connects to it instead of failing as it should."""
    from safeeraser.pipeline.locks import exclusive

    return lambda: exclusive(tmp_path_factory.getbasetemp().parent / "ray.lock")


@pytest.fixture(scope="session")
def mini_dir(tmp_path_factory):
    from safeeraser.data.mini import make_mini

    return built_once(tmp_path_factory, "mini", lambda out: make_mini(out, seed=0, train_per_category=2,
                                                                      val_per_category=1))


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory, mini_dir):
    """The mini benchmark cut to its first two train and two val records (the same images and prompt file).
    For pipeline tests whose checks do not depend on how many records are answered: every record costs
    generation (3 samples per question, a 64-token greedy check of a fine-tuned model) in each step.
    The first records keep their indices, so their seeded answers are those of the full benchmark."""
    import json

    def build(out):
        shutil.copytree(mini_dir / "images", out / "images")
        shutil.copy(mini_dir / "prompt.json", out / "prompt.json")
        for split in ("train", "val"):
            records = json.loads((mini_dir / f"all_{split}.json").read_text())
            (out / f"all_{split}.json").write_text(json.dumps(records[:2]))

    return built_once(tmp_path_factory, "micro", build)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from safeeraser.models.tiny import make_tiny

    return built_once(tmp_path_factory, "tiny", lambda out: make_tiny(out, size="tiny", seed=0))


@pytest.fixture(scope="session")
def tiny_family_dir(tmp_path_factory):
    """name -> the folder of that family's tiny random model (built on first use)."""
    from safeeraser.models.tiny import make_tiny

    built = {}

    def get(name: str):
        if name not in built:
            built[name] = built_once(tmp_path_factory, f"tiny-{name}",
                                     lambda out: make_tiny(out, family=name, size="tiny", seed=0))
        return built[name]

    return get


@pytest.fixture(scope="session")
def processor(tiny_dir):
    from safeeraser.models.loading import load_processor

    return load_processor(str(tiny_dir))


@pytest.fixture(scope="session")
def vanilla_dir(tmp_path_factory, tiny_dir, mini_dir):
    """The tiny model briefly fine-tuned on the mini benchmark: it answers, so forgetting is measurable."""
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    def build(out):
        run_training(load_config("finetune_tiny.yaml", [
            f"model_path={tiny_dir}", f"data_path=[{mini_dir / 'all_train.json'},{mini_dir / 'all_val.json'}]",
            f"save_dir={out}", "num_epochs=20", "batch_size=16", "lr=3e-3", "overwrite=true",
        ]))

    return built_once(tmp_path_factory, "vanilla", build)


@pytest.fixture
def forget_cfg(vanilla_dir, mini_dir, tmp_path):
    def make(*overrides):
        from safeeraser.train.config import load_config

        return load_config("forget_tiny.yaml", [
            f"model_path={vanilla_dir}", f"data_path={mini_dir / 'all_train.json'}",
            f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / 'run'}", "batch_size=4",
            "gradient_accumulation_steps=1", "overwrite=true", *overrides,
        ])
    return make


@pytest.fixture
def kill_at_step(monkeypatch):
    """kill_at_step(n): the n-th call of the training step's loss raises KeyboardInterrupt (a simulated
    kill); returns a function that restores the real step."""
    import safeeraser.train.step as step

    original = step.compute_loss

    def arm(n: int):
        calls = {"n": 0}

        def crash(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt("simulated kill")
            return original(*a, **k)

        monkeypatch.setattr(step, "compute_loss", crash)
        return lambda: monkeypatch.setattr(step, "compute_loss", original)

    return arm
