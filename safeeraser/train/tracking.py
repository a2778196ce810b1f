"""The experiment trackers (tensorboard, wandb, through accelerate): that the chosen one can run, and
what it is given at the start of a run."""
from __future__ import annotations

import importlib.util

from omegaconf import OmegaConf

from safeeraser.train.config import ConfigError, flat_config

# report_to -> (modules any one of which lets accelerate's tracker run, what to install)
TRACKER_PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
}


def check_tracker(cfg) -> None:
    """A ConfigError before any model loads when report_to names a tracker whose package is missing:
    accelerate would only log a warning and then track nothing for the whole run."""
    name = cfg.tracking.report_to
    if name not in TRACKER_PACKAGES:
        return  # "none" (config.py rejects unknown names)
    modules, package = TRACKER_PACKAGES[name]
    if not any(importlib.util.find_spec(m) is not None for m in modules):
        raise ConfigError(f"key 'report_to': report_to={name} needs the {package} package, which is not "
                          f"installed: pip install {package} (or pip install -e '.[track]'), or set report_to=none")


def flat(config: dict, prefix: str = "") -> dict:
    """`{"LoRA": {"r": 32}}` -> `{"LoRA.r": 32}`, lists as strings: tensorboard's hparams take scalars and
    strings only (a nested value stops the run at its first step)."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value)
        elif value is None:
            out[name] = ""
        else:
            out[name] = value
    return out


def tracker_config(cfg) -> dict:
    """The resolved training config, flat, for every tracker: each key under the name it is written with
    (lr, not optim.lr), as runs logged before the config had sections."""
    return flat(flat_config(OmegaConf.to_container(cfg, resolve=True)))
