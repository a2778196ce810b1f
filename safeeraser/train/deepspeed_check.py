"""DeepSpeed is the `train` extra, not a default dependency: a launch that asks for it on an install without
it is one line naming the extra, not accelerate's traceback.

`accelerate launch --config_file CFG` checks for DeepSpeed in its own process, before our script starts, so
scripts that launch check the config first (`python -m safeeraser.train.deepspeed_check CFG`); a process
started with DeepSpeed asked for in its environment (ACCELERATE_USE_DEEPSPEED, set by a launcher) checks
itself (forget.py)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from safeeraser.train.config import ConfigError

INSTALL_HINT = ('DeepSpeed is not installed: it is the toolkit\'s "train" extra (pip install -e ".[train]"); '
                "without it, launch with config/accelerate/multi_gpu.yaml (DDP) or single_process.yaml")


def deepspeed_installed() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def config_wants_deepspeed(config_file: str | os.PathLike) -> bool:
    """Whether an accelerate config launches DeepSpeed. ConfigError for a missing or unreadable file."""
    import yaml

    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"{path}: accelerate config not found")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of accelerate settings")
    return str(cfg.get("distributed_type", "")).upper() == "DEEPSPEED" or bool(cfg.get("use_deepspeed"))


def check_launch_config(config_file: str | os.PathLike) -> None:
    if config_wants_deepspeed(config_file) and not deepspeed_installed():
        raise ConfigError(f"{config_file} asks for DeepSpeed (distributed_type: DEEPSPEED), but {INSTALL_HINT}")


def check_environment(environ=os.environ) -> None:
    """In a launched process: DeepSpeed asked for by the launcher's environment but not importable."""
    if environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true", "yes") and not deepspeed_installed():
        raise ConfigError(f"this launch asks for DeepSpeed (ACCELERATE_USE_DEEPSPEED), but {INSTALL_HINT}")


def main(argv: list[str] | None = None) -> int:
    """`python -m safeeraser.train.deepspeed_check ACCELERATE_CONFIG`: exit 2 with one line when the
    config asks for DeepSpeed and it is not installed (for scripts, before `accelerate launch`)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m safeeraser.train.deepspeed_check ACCELERATE_CONFIG", file=sys.stderr)
        return 2
    try:
        check_launch_config(argv[0])
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
