"""An unlearning step on a group of GPUs: `accelerate launch` of the forget command on the step's resolved
training config, written into the step's folder (the one file the processes read their settings from)."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from safeeraser.io import atomic_write_text
from safeeraser.train.config import find_config
from safeeraser.train.deepspeed_check import check_launch_config

TRAIN_CONFIG_FILE = "train_config.yaml"


def accelerate_command(accelerate_config: str | Path, processes: int, train_config: str | Path) -> list[str]:
    # The module forms (`-m accelerate.commands.launch`, `-m safeeraser.cli`) run with this interpreter and
    # need no script on disk (an installed wheel has no forget.py); port 0: each group gets a free port.
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
            "--num_processes", str(processes), "--main_process_port", "0",
            "-m", "safeeraser.cli", "forget", "--config", str(train_config)]


def write_train_config(cfg, out: Path) -> Path:
    """The resolved training config as YAML in `out`. Its preset is applied already: loading the file again
    must not lay the preset over the overrides it holds."""
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["preset"] = ""
    path = Path(out) / TRAIN_CONFIG_FILE
    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(resolved)))
    return path


def forget_on_gpus(cfg, out: Path, processes: int, accelerate_config: str | None, log=print) -> None:
    launch = find_config(accelerate_config or "accelerate/multi_gpu.yaml")
    check_launch_config(launch)  # a DeepSpeed config without DeepSpeed: one line, not accelerate's traceback
    config = write_train_config(cfg, out)
    cmd = accelerate_command(launch, processes, config)
    log("$ " + shlex.join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    code = subprocess.run(cmd).returncode  # its output goes where ours does: the step's log
    if code != 0:
        raise RuntimeError(f"accelerate launch of {processes} processes exited with {code} (its output is above)")
