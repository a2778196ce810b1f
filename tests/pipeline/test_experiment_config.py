"""Experiment configs: what `load_experiment` accepts and the one error it gives otherwise."""
from __future__ import annotations

import pytest

from safeeraser.pipeline.experiment import load_experiment
from safeeraser.train.config import ConfigError


def test_malformed_yaml_is_one_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: t\nmethods: [ga, gapd\njudge: {name: keyword}\n")
    with pytest.raises(ConfigError, match=rf"{path}: malformed YAML at line \d+"):
        load_experiment(path)


def test_a_subset_of_methods_keeps_the_overrides_of_the_others():
    cfg = load_experiment("mini.yaml", ["methods=[ga]"])
    assert list(cfg.methods) == ["ga"] and "npo" in cfg.method_overrides


def test_overrides_of_an_unknown_method_are_an_error(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("methods: [ga]\nmethod_overrides: {gx: [lr=1]}\n")
    with pytest.raises(ConfigError, match="method_overrides.gx': unknown method 'gx'"):
        load_experiment(path)


def test_bad_threads_and_agreement_judges_are_config_errors(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("methods: [ga]\nthreads: 0\n")
    with pytest.raises(ConfigError, match="key 'threads'"):
        load_experiment(path)
    path.write_text("methods: [ga]\nagreement: [nosuchjudge]\n")
    with pytest.raises(ConfigError, match=r"key 'agreement\[0\].name'"):
        load_experiment(path)


def test_mini_uses_the_exact_judge_fixed_threads_and_no_fake_specificity():
    cfg = load_experiment("mini.yaml")
    assert cfg.judge.name == "truth" and list(cfg.agreement) == ["keyword"]
    assert cfg.threads == 2 and cfg.specificity is None


@pytest.mark.parametrize("override, key", [("infer.batch_size=0", "infer.batch_size"),
                                           ("infer.max_new_tokens=-1", "infer.max_new_tokens"),
                                           ("infer.bacth_size=4", "infer.bacth_size")])
def test_bad_infer_settings_are_config_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"key '{key}'"):
        load_experiment("mini.yaml", [override])


def test_an_agreement_judge_without_its_key_fails_before_any_step(monkeypatch, tmp_path):
    from safeeraser.pipeline.experiment import run_experiment

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "exp.yaml"
    path.write_text(f"workdir: {tmp_path / 'work'}\nmethods: [ga]\njudge: {{name: keyword}}\n"
                    "agreement: [openai]\nspecificity: null\n")
    with pytest.raises(ConfigError, match=r"key 'agreement\[0\].api_key'"):
        run_experiment(path, log=lambda *_: None)
    assert not (tmp_path / "work").exists()
