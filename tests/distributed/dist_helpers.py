"""Helpers for the multi-process tests: launch forget.py with `accelerate launch` on the CPU, run
the same training in one process with the same global batch, and compare the two runs.

Sizes are chosen so that nothing is padded: the mini benchmark has 24 forget examples; one process
runs batch_size 4 x accumulation 2, two processes run 2 x 2 or 4 x 1 (24 is a multiple of every
global pass), so every process sees whole batches and the runs are comparable step by step."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")
LAUNCH_TIMEOUT_S = 420
# One process: batch 4 x accumulation 2 = global batch 8; 24 examples -> 3 steps per epoch.
ONE = {"batch_size": 4, "gradient_accumulation_steps": 2}
EPOCHS = 2
# A constant rate: a run stopped after 2 steps and resumed follows the schedule of an uninterrupted one
# whatever step cap each part had (the checkpoint test's resumed run is compared with the DDP test's gdpd run).
CONSTANT_LR = ("lr_scheduler_type=constant", "warmup_ratio=0")
CPU_MULTI = "config/accelerate/cpu_multi.yaml"
# The DDP test's gdpd run and the checkpoint test's uninterrupted run: 1 x (4 x 2) against 2 x (2 x 2).
GDPD_HALF_BATCH = ("ddp-gdpd", CPU_MULTI, "gdpd", ONE["batch_size"] // 2,
                   ONE["gradient_accumulation_steps"], *CONSTANT_LR)


def run_overrides(vanilla_dir, mini_dir, method: str, save_dir: Path, batch_size: int, gas: int) -> list[str]:
    return [f"model_path={vanilla_dir}", f"data_path={mini_dir / 'all_train.json'}",
            f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={save_dir}", f"forget_loss={method}",
            f"batch_size={batch_size}", f"gradient_accumulation_steps={gas}", f"num_epochs={EPOCHS}",
            "overwrite=true", "report_to=none"]


def launch_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
        # CPU tests: hide any GPU so that both accelerate and DeepSpeed stay on the CPU (gloo).
        "CUDA_VISIBLE_DEVICES": "", "DS_ACCELERATOR": "cpu",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    })
    env.pop("WORLD_SIZE", None)
    return env


def launch(config_file: str, overrides: list[str], num_processes: int = 2) -> subprocess.CompletedProcess:
    """`accelerate launch` forget.py, as a user would, from the repository root."""
    return _accelerate_launch(config_file, ["forget.py", "--config-name", "forget_tiny.yaml", *overrides],
                              num_processes)


def launch_runs(config_file: str, runs: list[list[str]], num_processes: int = 2) -> subprocess.CompletedProcess:
    """Several forget runs (their overrides), one after the other in the processes of ONE `accelerate launch`
    (launch_runs.py: each run as forget.py runs it). A launch costs ~16 s of CPU (three processes importing
    torch, transformers and peft) and its runs' training under a second: runs that need not start in processes
    of their own share one launch."""
    args = ["tests/distributed/launch_runs.py"]
    for i, overrides in enumerate(runs):
        args += [*(["--next-run"] if i else []), "--config-name", "forget_tiny.yaml", *overrides]
    return _accelerate_launch(config_file, args, num_processes)


def _accelerate_launch(config_file: str, script_args: list[str], num_processes: int) -> subprocess.CompletedProcess:
    cmd = [str(ACCELERATE), "launch", "--config_file", config_file, "--num_processes", str(num_processes),
           "--main_process_port", "0", "--mixed_precision", "no", *script_args]
    proc = subprocess.run(cmd, cwd=REPO, env=launch_env(), capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return proc


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]


def assert_same_run(one: Path, many: Path, loss_tol: float, weight_tol: float, rise: float = 2.0) -> None:
    """Same step count, learning-rate schedule and logged losses; one adapter, with the same weights;
    the forget loss rose by the factor `rise` (the runs trained)."""
    from safetensors.torch import load_file

    rows_one, rows_many = read_log(one), read_log(many)
    assert [r["step"] for r in rows_many] == [r["step"] for r in rows_one]
    assert [r["epoch"] for r in rows_many] == [r["epoch"] for r in rows_one]
    assert len(rows_one) == EPOCHS * 24 // (ONE["batch_size"] * ONE["gradient_accumulation_steps"])
    for a, b in zip(rows_one, rows_many):
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9, abs=1e-15), a["step"]
        assert set(b) == set(a)
        for key in a:
            if key.startswith("loss/"):
                assert b[key] == pytest.approx(a[key], abs=loss_tol), (a["step"], key)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3, abs=1e-5), a["step"]
    done_one = json.loads((one / "run_complete.json").read_text())
    done_many = json.loads((many / "run_complete.json").read_text())
    assert done_many == done_one
    # One adapter, written once (by the main process), nothing per rank.
    assert sorted(p.name for p in many.glob("*.safetensors")) == ["adapter_model.safetensors"]
    assert not list(many.glob("*rank*")) and not list(many.glob("checkpoint-*"))
    w_one, w_many = load_file(str(one / "adapter_model.safetensors")), load_file(str(many / "adapter_model.safetensors"))
    assert w_many.keys() == w_one.keys()
    # LoRA matrices and the projector's full copy (modules_to_save)
    assert any("lora_" not in k for k in w_one) and any("lora_A" in k for k in w_one)
    for k in w_one:
        assert w_many[k].dtype == w_one[k].dtype, k
        assert (w_many[k] - w_one[k]).abs().max().item() < weight_tol, k
    # The runs did train: the comparison is not between two untouched adapters.
    assert rows_one[-1]["loss/forget"] > rise * rows_one[0]["loss/forget"]


BUILD_DS_OPS = ("DS_ACCELERATOR=cpu python -c \"from deepspeed.accelerator import get_accelerator as g; "
                "[g().create_op_builder(n).load() for n in ('CPUAdamBuilder', 'ShareMemCommBuilder')]\"")


def deepspeed_cpu_problem() -> str | None:
    """Why DeepSpeed cannot run these tests here, or None. Its CPU ops (CPU Adam for the optimizer
    offload, the shared-memory collectives) are compiled on first use: minutes on 2 cores. Checked
    without importing deepspeed, which would pick an accelerator inside the test process."""
    spec = importlib.util.find_spec("deepspeed")
    if spec is None:
        return "DeepSpeed is not installed (pip install deepspeed)"
    import ast

    from torch.utils.cpp_extension import _get_build_directory

    installed = {}
    info = Path(spec.origin).parent / "git_version_info_installed.py"
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("installed_ops="):
                installed = ast.literal_eval(line.split("=", 1)[1])
    missing = [name for name in ("cpu_adam", "deepspeed_shm_comm")
               if not installed.get(name)
               and not (Path(_get_build_directory(name, verbose=False)) / f"{name}.so").exists()]
    if missing:
        return (f"DeepSpeed's CPU op(s) {', '.join(missing)} are not built (a JIT build takes minutes on 2 cores, "
                f"more than this suite's budget): build them once with {BUILD_DS_OPS}")
    return None


# name -> (method, its overrides): two steps of each method that restricts where the model changes
FULL_LM = ["LoRA.r=0", "tune_language_model=true", "max_train_steps=2", "warmup_ratio=0"]
LOCALIZED = {
    "mmunlearner": ("mmunlearnerpd", FULL_LM),
    "manu": ("manu", ["LoRA.r=0"]),
    "mip-editor": ("mip_editor", FULL_LM + ["tune_vision_tower=true", "method_args.ig_steps=1"]),
    "smfa": ("smfa", ["max_train_steps=2", "warmup_ratio=0"]),
}
