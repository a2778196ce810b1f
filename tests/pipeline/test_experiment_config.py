"""Experiment configs: what `load_experiment` accepts and the one error it gives otherwise."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

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


@pytest.mark.parametrize("override, key, says", [
    ("infer.greedy=sometimes", "infer.greedy", "true or false"),
    ("infer.temperature=hot", "infer.temperature", "a number"),
    ("infer.backend=tgi", "infer.backend", "one of hf, vllm"),
    ("infer.output_file=x.json", "infer.output_file", "not an inference setting"),  # the pipeline's own
])
def test_infer_block_is_checked_against_the_typed_settings(override, key, says):
    with pytest.raises(ConfigError, match=rf"key '{key}': {says}"):
        load_experiment("mini.yaml", [override])


def test_infer_block_builds_the_settings_the_command_line_gives():
    from safeeraser.infer.ckpt_infer import parse_settings
    from safeeraser.infer.settings import settings_for

    cfg = load_experiment("mini.yaml", ["infer.greedy=true", "infer.temperature=0"])
    built = settings_for(OmegaConf.to_container(cfg.infer), eval_file="a.json", output_file="b.json",
                         model_path="m", resume=True)
    parsed = parse_settings(["--eval_file", "a.json", "--output_file", "b.json", "--model_path", "m", "--resume",
                             "--batch_size", "32", "--max_new_tokens", "64", "--seed", "0", "--greedy",
                             "--temperature", "0"])
    assert built == parsed and isinstance(built.temperature, float)


@pytest.mark.parametrize("override, key", [("launcher.name=kubernetes", "launcher.name"),
                                           ("launcher.adress=auto", "launcher.adress"),
                                           ("launcher.gpus_per_run=-1", "launcher.gpus_per_run"),
                                           ("launcher.gpus_per_run=two", "launcher.gpus_per_run")])
def test_bad_launcher_settings_are_config_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"key '{key}'"):
        load_experiment("mini.yaml", [override])


def test_the_launcher_is_not_part_of_the_config_a_report_is_named_by(tmp_path, monkeypatch):
    """Where the steps ran changes no result: the report's config and its hash are the same."""
    from safeeraser.pipeline import experiment

    seen = []
    monkeypatch.setattr("safeeraser.pipeline.launchers.local.LocalLauncher.run", lambda *a: None)
    monkeypatch.setattr(experiment.Runner, "prepare_inputs", lambda self: None)
    monkeypatch.setattr(experiment.Runner, "rows", lambda self: [])
    monkeypatch.setattr(experiment, "write_report", lambda rows, work, meta, **k: seen.append(meta) or [])
    monkeypatch.setattr(experiment, "write_html", lambda runner, report: report)
    path = tmp_path / "exp.yaml"
    path.write_text(f"workdir: {tmp_path / 'work'}\nmethods: []\njudge: {{name: keyword}}\nspecificity: null\n")
    experiment.run_experiment(path, log=lambda *_: None)
    experiment.run_experiment(path, ["launcher.gpus_per_run=4", "launcher.partition=gpu"], log=lambda *_: None)
    a, b = seen
    assert "launcher" not in a["config"] and a["config_sha256"] == b["config_sha256"] and a["launcher"] == "local"


def test_the_pipeline_hands_typed_settings_not_strings(tmp_path):
    """A data path with a comma, a bracket or an equals sign survives: the runner sets its own settings as
    values (TrainRequest), never as key=value strings for the parser to split again."""
    from safeeraser.pipeline.experiment import Runner

    odd = tmp_path / "data, v=2 [final]"
    cfg = load_experiment("mini.yaml", [f"data.train={odd}/all_train.json", f"data.val={odd}/all_val.json",
                                        f"data.prompt={odd}/prompt.json", "methods=[ga]"])
    runner = Runner(cfg, log=lambda *a: None)
    runner.validate_paths = False
    run = runner.plan_run("ga", seed=7)
    loaded = run.train.load(validate_paths=False, save_dir=str(tmp_path / "out"))
    assert loaded.data.data_path == f"{odd}/all_train.json" and loaded.optim.seed == 7 and loaded.method.forget_loss == "ga"
    assert run.train.overrides == ()  # mini.yaml has no forget_overrides: nothing else is parsed
    tune = runner.finetune_request().load(validate_paths=False)
    assert list(tune.data.data_path) == [f"{odd}/all_train.json", f"{odd}/all_val.json"]


def test_a_config_extends_another_and_states_only_what_it_changes(tmp_path):
    base = load_experiment("mini.yaml")
    attacked = load_experiment("mini_attacks.yaml")
    assert attacked.workdir == base.workdir == "runs/mini-llava"  # the same runs, reused
    assert attacked.method_overrides == base.method_overrides and attacked.judge == base.judge
    assert list(attacked.methods) != list(base.methods) and attacked.attacks
    (tmp_path / "child.yaml").write_text("extends: mini.yaml\nname: child\nseeds: [1, 2]\n")
    child = load_experiment(tmp_path / "child.yaml")
    assert child.workdir == "runs/child" and list(child.seeds) == [1, 2]  # interpolations see the child's keys
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="key 'extends': a loop"):
        load_experiment(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="c.yaml: key 'extends': experiment config 'nowhere.yaml' not found"):
        load_experiment(tmp_path / "c.yaml")
