"""npo_beta, simnpo_beta and simnpo_gamma became method arguments: the old keys are still read (one line
says so), and a run's name is what it was whichever way the setting is written."""
from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from safeeraser.train.config import ConfigError, identity_config, load_config


def _identity(*overrides):
    return identity_config(OmegaConf.to_container(load_config("forget_lora.yaml", list(overrides),
                                                              validate_paths=False)))


def test_the_old_keys_become_method_arguments(caplog):
    with caplog.at_level(logging.WARNING, logger="safeeraser.train.config"):
        cfg = load_config("forget_lora.yaml", ["forget_loss=npopd", "npo_beta=1.0"], validate_paths=False)
    assert cfg.method.method_args == {"beta": 1.0} and cfg.method.npo_beta is None
    assert "key 'npo_beta' is deprecated: it is method_args.beta of npo" in caplog.text
    cfg = load_config("forget_lora.yaml", ["forget_loss=simnpo", "simnpo_beta=3", "simnpo_gamma=0.5"],
                      validate_paths=False)
    assert cfg.method.method_args == {"beta": 3, "gamma": 0.5}
    with pytest.raises(ConfigError, match="key 'npo_beta': 1.0, but method_args.beta is 2.0"):
        load_config("forget_lora.yaml", ["forget_loss=npo", "npo_beta=1.0", "method_args.beta=2.0"],
                    validate_paths=False)


def test_a_run_is_named_as_before_whichever_key_holds_the_setting():
    old_style = {"forget_loss": "npo", "npo_beta": 1.0, "simnpo_beta": 2.5, "simnpo_gamma": 0.0, "method_args": {}}
    new = _identity("forget_loss=npo", "method_args.beta=1.0")
    assert {k: new[k] for k in old_style} == old_style
    assert _identity("forget_loss=npo", "npo_beta=1.0") == new
    # a method without these arguments holds the old defaults, as every run made before held them
    ga = _identity("forget_loss=ga")
    assert (ga["npo_beta"], ga["simnpo_beta"], ga["simnpo_gamma"], ga["method_args"]) == (0.1, 2.5, 0.0, {})
    # and dpo's own beta is dpo's, not NPO's
    assert _identity("forget_loss=dpo", "method_args.beta=0.3")["method_args"] == {"beta": 0.3}


def test_the_mini_grids_run_names_are_pinned(tmp_path):
    """The names the mini grid's runs had before the keys moved (the config's hash, the vanilla model
    aside): a change here renames every run and makes every finished step run again."""
    import hashlib
    import json

    def digest(obj) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]

    names = {}
    for method, overrides in (("npo", ["method_args.beta=1.0", "lr=1e-2"]), ("ga", []), ("simnpo", [])):
        resolved = identity_config(OmegaConf.to_container(load_config(
            "forget_tiny.yaml", [*overrides, f"forget_loss={method}", "save_dir=.", "model_path=m", "data_path=d.json",
                                 "idk_path=p.json"], validate_paths=False)))
        resolved.pop("save_dir")
        names[method] = digest(resolved)
    assert names == {"npo": "6649509f", "ga": "98f2d25b", "simnpo": "a3232dbd"}  # as computed before the move
