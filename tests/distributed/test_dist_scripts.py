"""scripts/forget_lora.bash and scripts/forget_grid.bash, as dry runs (DRY_RUN=1 prints each command, or the
grid's plan: `safeeraser run --dry-run`)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
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


def test_forget_lora_names_the_train_extra_before_a_deepspeed_launch_without_it(tmp_path):
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    env = {**os.environ, "PYTHON": sys.executable, "ACCELERATE_BIN": str(tmp_path / "never-run")}
    out = subprocess.run(["bash", "scripts/forget_lora.bash", "forget_loss=gdpd"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert '".[train]"' in out.stderr and "config/accelerate_config.yaml" in out.stderr


@pytest.mark.parametrize("script", ["forget_lora.bash", "forget_grid.bash"])
def test_scripts_are_executable(script):
    assert os.access(Path(REPO / "scripts" / script), os.X_OK)


def _experiment(tmp_path, mini_dir) -> Path:
    """A grid of the mini data, planned only: its model need not exist."""
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "g", "workdir": str(tmp_path / "runs" / "${name}"),
        "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                 "prompt": str(mini_dir / "prompt.json")},
        "model": {"vanilla": "org/model"}, "forget_config": "forget_tiny.yaml", "forget_overrides": ["batch_size=4"],
        "methods": ["ga"], "judge": {"name": "truth"}, "specificity": None}))
    return path


def _plan(tmp_path, mini_dir, *args, **env):
    """forget_grid.bash's dry run: the safeeraser commands it runs, and the forget and infer lines of their plans."""
    full = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "nvidia-smi").write_text("#!/bin/sh\nexit 9\n")  # a machine without GPUs
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    full.update(DRY_RUN="1", PYTHON=sys.executable, PATH=f"{tmp_path / 'bin'}:{full['PATH']}",
                EXPERIMENT=str(_experiment(tmp_path, mini_dir)), **env)
    out = subprocess.run(["bash", str(REPO / "scripts" / "forget_grid.bash"), *args], env=full, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    commands = [line[2:] for line in out.stderr.splitlines() if line.startswith("+ ")]
    return commands, out.stdout.splitlines()


def test_grid_plans_every_method_and_seed_on_gpu_groups_without_a_gpu(tmp_path, mini_dir):
    (command,), plan = _plan(tmp_path, mini_dir, "num_epochs=1", METHODS="gdpd klpd", SEEDS="1 2", GPUS_PER_RUN="2")
    assert "--launcher ray --dry-run" in command and "methods=[gdpd,klpd] seeds=[1,2]" in command
    assert "forget_overrides=['batch_size=4','num_epochs=1']" in command  # the experiment's, then the arguments'
    forgets = [line for line in plan if line.strip().startswith("todo  forget:")]
    assert sorted(line.split("(")[1].split(")")[0] for line in forgets) == [
        "gdpd, seed 1", "gdpd, seed 2", "klpd, seed 1", "klpd, seed 2"]
    assert all("[2 GPU, 1 CPU]" in line for line in forgets)
    launches = [shlex.split(line.split("$ ", 1)[1]) for line in plan if "accelerate.commands.launch" in line]
    assert len(launches) == 4 and all(_flag(argv, "--num_processes") == "2" for argv in launches)
    assert all(_flag(argv, "--config_file").endswith("config/accelerate/multi_gpu.yaml") for argv in launches)
    assert all(argv[-4:-1] == ["safeeraser.cli", "forget", "--config"] and argv[-1].endswith("/train_config.yaml")
               for argv in launches)
    infers = [line for line in plan if line.strip().startswith("todo  infer:")]
    assert len(infers) == 2 * 5 and all("[1 GPU, 1 CPU]" in line for line in infers)  # vanilla + 4 runs


def test_grid_runs_each_lr_as_its_own_experiment_and_takes_lr_as_an_argument(tmp_path, mini_dir):
    commands, plan = _plan(tmp_path, mini_dir, METHODS="gdpd", LRS="1e-4 2e-4", GPUS_PER_RUN="1")
    assert [c.split("name=")[1].split()[0] for c in commands] == ["g-lr1e-4", "g-lr2e-4"]
    heads = [line for line in plan if line.startswith("experiment ")]
    assert [h.split("workdir ")[1] for h in heads] == [str(tmp_path / "runs" / f"g-lr{lr}") for lr in ("1e-4", "2e-4")]
    forgets = [line.split()[1] for line in plan if line.strip().startswith("todo  forget:")]
    assert len(set(forgets)) == 2  # the two lrs are two unlearning runs
    (again,), plan2 = _plan(tmp_path, mini_dir, "lr=2e-4", "forget_loss=gdpd", GPUS_PER_RUN="1")
    assert "forget_overrides=['batch_size=4','lr=2e-4']" in again and "methods=[gdpd]" in again
    assert [line.split()[1] for line in plan2 if line.strip().startswith("todo  forget:")] == [forgets[1]]


def test_grid_refuses_an_axis_set_two_ways(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "CUDA_VISIBLE_DEVICES": "0,1", "LRS": "1e-4"}
    out = subprocess.run(["bash", str(REPO / "scripts" / "forget_grid.bash"), "lr=2e-4"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "lr=2e-4 and LRS=1e-4" in out.stderr
    out = subprocess.run(["bash", str(REPO / "scripts" / "forget_grid.bash"), "save_dir=x"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "named by the pipeline" in out.stderr
