"""scripts/forget_lora.bash and scripts/forget_grid.bash, as dry runs (DRY_RUN=1 prints each command)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dist_helpers import REPO


def _run(script: str, *args: str, **env: str) -> list[str]:
    full = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "ACCELERATE_BIN": "accelerate", **env}
    out = subprocess.run(["bash", f"scripts/{script}", *args], cwd=REPO, env=full, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith(("CUDA_VISIBLE_DEVICES=", "skip"))]


def _parse(line: str) -> tuple[str, list[str]]:
    env, *argv = shlex.split(line)
    return env.split("=", 1)[1], argv


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_scripts_are_valid_bash():
    for script in ("forget_lora.bash", "forget_grid.bash"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)


def test_forget_lora_defaults_to_the_reference_launch():
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run(["bash", "scripts/forget_lora.bash", "forget_loss=gdpd", "lr=2e-4"], cwd=REPO,
                         env={**env, "DRY_RUN": "1", "ACCELERATE_BIN": "accelerate"},
                         capture_output=True, text=True, timeout=60)
    (line,) = out.stdout.splitlines()
    gpus, argv = _parse(line)
    assert gpus == "0,1"
    assert argv[:2] == ["accelerate", "launch"]
    assert _flag(argv, "--config_file") == "config/accelerate_config.yaml"
    assert _flag(argv, "--num_processes") == "2" and _flag(argv, "--main_process_port") == "29505"
    assert _flag(argv, "--mixed_precision") == "bf16"
    assert argv[argv.index("forget.py"):] == ["forget.py", "--config-name", "forget_lora.yaml", "forget_loss=gdpd",
                                              "lr=2e-4"]


def test_forget_lora_follows_the_environment():
    (line,) = _run("forget_lora.bash", "forget_loss=klpd", CUDA_VISIBLE_DEVICES="4,5,6,7", MASTER_PORT="30001",
                   ACCELERATE_CONFIG="config/accelerate/deepspeed_zero3.yaml", MIXED_PRECISION="")
    gpus, argv = _parse(line)
    assert gpus == "4,5,6,7" and _flag(argv, "--num_processes") == "4"
    assert _flag(argv, "--main_process_port") == "30001"
    assert _flag(argv, "--config_file") == "config/accelerate/deepspeed_zero3.yaml"
    assert "--mixed_precision" not in argv


def test_grid_runs_every_method_on_gpu_groups_with_their_own_ports(tmp_path):
    lines = _run("forget_grid.bash", f"save_dir={tmp_path}/${{forget_loss}}_${{lr}}", "num_epochs=1",
                 CUDA_VISIBLE_DEVICES="0,1,2,3,4", GPUS_PER_RUN="2", BASE_PORT="29700")
    runs = [_parse(line) for line in lines]
    methods = [a[-2] for _, a in runs]
    assert sorted(methods) == sorted(f"forget_loss={m}" for m in "ga gd kl po gapd gdpd klpd popd".split())
    ports = {}
    for gpus, argv in runs:
        assert gpus in ("0,1", "2,3")  # GPU 4 is left over
        assert _flag(argv, "--num_processes") == "2"
        ports.setdefault(gpus, set()).add(_flag(argv, "--main_process_port"))
        assert argv[-3:-2] == ["num_epochs=1"] and argv[-1] == "lr=1e-4"
    assert ports == {"0,1": {"29700"}, "2,3": {"29701"}}


def test_grid_skips_finished_runs_and_resumes_interrupted_ones(tmp_path):
    (tmp_path / "gdpd_0.0001").mkdir()
    (tmp_path / "gdpd_0.0001" / "run_complete.json").write_text("{}")
    (tmp_path / "klpd_0.0001" / "checkpoint-4").mkdir(parents=True)
    lines = _run("forget_grid.bash", f"save_dir={tmp_path}/${{forget_loss}}_${{lr}}", METHODS="gdpd klpd popd",
                 CUDA_VISIBLE_DEVICES="0,1", GPUS_PER_RUN="2")
    assert lines[0] == f"skip (finished): {tmp_path}/gdpd_0.0001"
    klpd, popd = (_parse(line)[1] for line in lines[1:])
    assert "forget_loss=klpd" in klpd and klpd[-1] == "resume_from_checkpoint=latest"
    assert "forget_loss=popd" in popd and "resume_from_checkpoint=latest" not in popd


def test_grid_seeds_get_their_own_save_dirs(tmp_path):
    lines = _run("forget_grid.bash", f"save_dir={tmp_path}/${{forget_loss}}_${{lr}}", METHODS="po", SEEDS="1 2",
                 LRS="1e-4 5e-5", CUDA_VISIBLE_DEVICES="0,1", GPUS_PER_RUN="1")
    argvs = [_parse(line)[1] for line in lines]
    assert sorted(a[-1] for a in argvs) == sorted(f"save_dir={tmp_path}/po_{lr}_seed{s}"
                                                  for lr in ("0.0001", "5e-05") for s in (1, 2))
    assert sorted((a[-3], a[-2]) for a in argvs) == [("lr=1e-4", "seed=1"), ("lr=1e-4", "seed=2"),
                                                      ("lr=5e-5", "seed=1"), ("lr=5e-5", "seed=2")]
    assert {_flag(a, "--main_process_port") for a in argvs} == {"29600", "29601"}  # two one-GPU groups


@pytest.mark.parametrize("script", ["forget_lora.bash", "forget_grid.bash"])
def test_scripts_are_executable(script):
    assert os.access(Path(REPO / "scripts" / script), os.X_OK)


def test_grid_takes_lr_and_method_arguments_as_its_axes(tmp_path):
    lines = _run("forget_grid.bash", f"save_dir={tmp_path}/${{forget_loss}}_${{lr}}", "lr=2e-4", "forget_loss=gdpd",
                 CUDA_VISIBLE_DEVICES="0,1", GPUS_PER_RUN="2")
    (_, argv), = (_parse(line) for line in lines)
    assert argv[-2:] == ["forget_loss=gdpd", "lr=2e-4"]
    assert "lr=1e-4" not in argv


def test_grid_refuses_an_axis_set_two_ways(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "CUDA_VISIBLE_DEVICES": "0,1", "LRS": "1e-4"}
    out = subprocess.run(["bash", str(REPO / "scripts" / "forget_grid.bash"), "lr=2e-4"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "lr=2e-4 and LRS=1e-4" in out.stderr


def test_grid_dry_run_plans_without_gpus(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(DRY_RUN="1", PATH=f"{tmp_path}:{env['PATH']}", METHODS="gdpd")
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")  # a machine without GPUs
    (tmp_path / "nvidia-smi").chmod(0o755)
    out = subprocess.run(["bash", str(REPO / "scripts" / "forget_grid.bash"), f"save_dir={tmp_path}/x"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "no GPU found; the dry run plans for" in out.stderr
    assert "forget_loss=gdpd" in out.stdout
