"""Pinned CPU numerics (safeeraser.numerics): the variables are set before torch loads, a run pinned to AVX2
computes the same whatever the environment asked for, and the pipeline carries the mode into the runs'
configs (changing their names only when pinned) and their provenance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from safeeraser import numerics

REPO = Path(__file__).resolve().parents[1]


def test_native_sets_nothing_and_an_unknown_mode_is_a_config_error():
    from safeeraser.train.config import ConfigError

    assert numerics.pin("native") == {}
    with pytest.raises(ConfigError, match="key 'numerics': one of native, avx2, got 'avx3'"):
        numerics.pin("avx3")


def test_pinning_after_torch_loaded_with_other_settings_is_refused(monkeypatch):
    import torch  # noqa: F401 - loaded, as in any process that already computed something

    for key in numerics.LEVERS:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(numerics.NumericsError, match="before torch is imported"):
        numerics.pin("avx2")
    assert numerics.current_mode() == "native"
    # a process started with the variables already set (a launcher's worker) passes
    for key, value in numerics.PINNED["avx2"].items():
        monkeypatch.setenv(key, value)
    assert numerics.pin("avx2") == numerics.PINNED["avx2"]
    described = numerics.describe()
    assert described["mode"] == "avx2" and described["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "aten_capability" in described


def test_a_pinned_run_sizes_its_inference_chunks_without_the_clock(monkeypatch):
    from safeeraser.infer.ckpt_infer import FLUSH_SECONDS, next_chunk_size

    args = SimpleNamespace(chunk_records=64)
    for key in numerics.LEVERS:
        monkeypatch.delenv(key, raising=False)
    assert next_chunk_size(10, FLUSH_SECONDS / 2, args) == 20  # native: as many as take FLUSH_SECONDS
    for key, value in numerics.PINNED["avx2"].items():
        monkeypatch.setenv(key, value)
    assert next_chunk_size(10, FLUSH_SECONDS / 2, args) == next_chunk_size(10, 1e-3, args) == 64


def test_the_training_config_checks_the_mode(tiny_dir, mini_dir, tmp_path):
    from safeeraser.train.config import ConfigError, load_config

    base = [f"model_path={tiny_dir}", f"data_path={mini_dir / 'all_train.json'}",
            f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / 'run'}"]
    assert load_config("forget_tiny.yaml", base).optim.numerics == "native"
    with pytest.raises(ConfigError, match="key 'numerics'"):
        load_config("forget_tiny.yaml", [*base, "numerics=fast"])


def test_the_experiment_carries_numerics_into_run_names_only_when_pinned(tmp_path, mini_dir):
    import yaml

    from safeeraser.pipeline.experiment import Runner, load_experiment
    from safeeraser.train.config import ConfigError

    cfg = {"name": "n", "workdir": str(tmp_path / "w"), "data": {"train": str(mini_dir / "all_train.json"),
           "val": str(mini_dir / "all_val.json"), "prompt": str(mini_dir / "prompt.json")},
           "model": {"vanilla": str(tmp_path / "no-model")}, "methods": ["ga"], "specificity": None}
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(cfg))

    def plan(*overrides):
        runner = Runner(load_experiment(path, list(overrides)), log=lambda *a: None)
        runner.validate_paths = False
        return runner.plan_run("ga")

    native, explicit, pinned = plan(), plan("numerics=native"), plan("numerics=avx2")
    assert native.tag == explicit.tag  # names made before the key existed still match
    assert pinned.tag != native.tag and pinned.train.settings["numerics"] == "avx2"
    assert "numerics" not in native.train.settings
    with pytest.raises(ConfigError, match="key 'numerics'"):
        load_experiment(path, ["numerics=avx512"])


def _pinned_run(mode, model, data, prompt, out) -> dict:
    """The run each test process makes: 4 gdpd steps of the tiny model under numerics `mode`; its ATen code
    path, losses and adapter. Run in a fresh process by RUN, or (native) in this one."""
    import hashlib

    import torch

    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    run_training(load_config("forget_tiny.yaml", [
        f"model_path={model}", f"data_path={data}", f"idk_path={prompt}", f"save_dir={out}", "forget_loss=gdpd",
        "batch_size=4", "gradient_accumulation_steps=1", "max_train_steps=4", "overwrite=true", "report_to=none",
        f"numerics={mode}"]))
    losses = [json.loads(line)["loss/total"] for line in open(f"{out}/log.jsonl")]
    weights = hashlib.sha256(open(f"{out}/adapter_model.safetensors", "rb").read()).hexdigest()
    return {"capability": torch.backends.cpu.get_cpu_capability(), "losses": losses, "adapter": weights}


RUN = """
import json, sys
from safeeraser.numerics import pin
mode, model, data, prompt, out = sys.argv[1:]
pin(mode)
import torch
torch.set_num_threads(1)
# The run ends by drawing its loss curves: matplotlib's import and a figure, ~1.3 s of this process's ~7 s of
# CPU, for a file nothing here reads (the losses and the adapter are compared). Not drawn in these processes,
# as the test process draws each layout once only (conftest's figures_drawn_once_per_layout).
import safeeraser.train.loop
safeeraser.train.loop.plot_loss_curves = lambda rows, out, title="": None
sys.path.insert(0, %r)
from test_numerics import _pinned_run
print(json.dumps(_pinned_run(mode, model, data, prompt, out)))
""" % str(Path(__file__).resolve().parent)


@pytest.mark.heavy
def test_a_run_pinned_to_avx2_computes_the_same_whatever_the_environment_asked(tiny_dir, mini_dir, tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in numerics.LEVERS}
    clean.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    # what a machine or a user may have set: the widest paths this CPU has
    widest = {**clean, "ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL", "MKL_CBWR": "AUTO"}

    def run(name, mode, env):
        proc = subprocess.run([sys.executable, "-c", RUN, mode, str(tiny_dir), str(mini_dir / "all_train.json"),
                               str(mini_dir / "prompt.json"), str(tmp_path / name)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    pinned, pinned_over_widest = run("a", "avx2", clean), run("b", "avx2", widest)
    # The native run: in this process when its torch loaded without any lever set (as a process started with
    # `clean` does; one torch thread, see conftest), which saves a process start (~5 s of imports);
    # else in a fresh process.
    import torch

    args = ("native", str(tiny_dir), str(mini_dir / "all_train.json"), str(mini_dir / "prompt.json"), str(tmp_path / "c"))
    if any(key in os.environ for key in numerics.LEVERS) or torch.get_num_threads() != 1:
        native = run("c", "native", clean)
    else:
        native = _pinned_run(*args)
    assert pinned["capability"] == pinned_over_widest["capability"] == "AVX2"
    assert pinned_over_widest["losses"] == pinned["losses"] and pinned_over_widest["adapter"] == pinned["adapter"]
    if native["capability"] == "AVX2":
        pytest.skip("this CPU has no wider path than AVX2: native is the pinned path here")
    # on a CPU with wider paths, the levers matter: otherwise this test would show nothing
    assert native["adapter"] != pinned["adapter"]


@pytest.mark.parametrize("given, kept", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_commands_make_openmp_threads_wait_passively_unless_told_otherwise(tmp_path, monkeypatch, given, kept):
    from safeeraser.cli import main

    report = tmp_path / "r.json"
    report.write_text(json.dumps({"rows": [], "pd_effects": []}))
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    assert main(["compare", str(report), str(report)]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == kept
