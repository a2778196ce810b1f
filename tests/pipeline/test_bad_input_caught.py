"""Bad input that typed configs and commands must catch up front, each with one error naming the key, the
file or the record (issue 29's list: each of these was a traceback or a silent result)."""
from __future__ import annotations

import json
import shutil
import socket

import pytest
from omegaconf import OmegaConf

from safeeraser.pipeline.experiment import load_experiment
from safeeraser.train.config import ConfigError


@pytest.mark.parametrize("override, message", [
    ("launcher.poll_s=-1", "key 'launcher.poll_s': seconds between looks for finished steps, more than 0"),
    ("launcher.poll_s=0", "key 'launcher.poll_s'"),
    ("model.make_tiny.size=huge", "key 'model.make_tiny.size': unknown size 'huge'. Valid choices: tiny, small"),
    ("model.make_tiny.family=llama", "key 'model.make_tiny.family': unknown family 'llama'"),
    ("model.make_tiny.seed=x", "key 'model.make_tiny.seed': an integer"),
    ("model.make_tiny.colour=red", "key 'model.make_tiny.colour': unknown"),
])
def test_launcher_and_tiny_model_settings_are_checked_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment("mini.yaml", [override])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_address_where_nothing_listens_fails_at_once():
    import time

    pytest.importorskip("ray")
    from safeeraser.pipeline.launchers.ray_launcher import RayLauncher

    cfg = load_experiment("mini.yaml", ["launcher.name=ray", f"launcher.address=127.0.0.1:{_free_port()}"])
    launcher = RayLauncher(cfg, log=lambda *_: None)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"key 'launcher.address': nothing answers at 127.0.0.1:\d+"):
        launcher.start()
    assert time.perf_counter() - t0 < 10  # Ray itself retries for ~35 s


def test_no_running_ray_cluster_for_auto_is_one_error(monkeypatch, tmp_path, ray_exclusive):
    ray = pytest.importorskip("ray")
    from safeeraser.pipeline.launchers.ray_launcher import RayLauncher

    if ray.is_initialized():
        pytest.skip("a Ray instance is running in this process")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # no cluster address file to find
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = load_experiment("mini.yaml", ["launcher.name=ray", "launcher.address=auto"])
    with ray_exclusive(), pytest.raises(ConfigError, match="key 'launcher.address': no Ray cluster at 'auto'"):
        RayLauncher(cfg, log=lambda *_: None).start()  # while no test of this suite has a cluster up


def test_slurm_without_slurm_is_an_error_not_local_processes(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    if shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    from safeeraser.pipeline.launchers.slurm_launcher import SlurmLauncher

    cfg = load_experiment("mini.yaml", ["launcher.name=slurm", f"launcher.folder={tmp_path}"])
    with pytest.raises(ConfigError, match="key 'launcher.cluster': no SLURM on this machine"):
        SlurmLauncher(cfg, log=lambda *_: None).start()
    local = load_experiment("mini.yaml", ["launcher.name=slurm", "launcher.cluster=local", f"launcher.folder={tmp_path}"])
    launcher = SlurmLauncher(local, log=lambda *_: None)
    launcher.start()
    assert launcher.local


def test_overrides_may_stand_on_both_sides_of_an_option(monkeypatch):
    from safeeraser import cli

    seen = {}
    monkeypatch.setattr(cli, "run", lambda func, args: seen.setdefault("args", args) and 0)
    cli.main(["run", "--config", "mini.yaml", "methods=[ga]", "--launcher", "local", "seeds=[1]", "--dry-run"])
    args = seen["args"]
    assert args.overrides == ["methods=[ga]", "seeds=[1]"] and args.launcher == "local" and args.dry_run
    with pytest.raises(SystemExit):
        cli.main(["run", "--config", "mini.yaml", "methods=[ga]", "--launcher", "local", "--nosuch"])


@pytest.mark.parametrize("flag", ["--rounds", "--steps"])
def test_bench_counts_below_one_are_refused(flag, capsys):
    from safeeraser.bench.command import main

    with pytest.raises(SystemExit) as exit_:
        main([flag, "0"])
    assert exit_.value.code == 2 and f"argument {flag}: an integer of at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_an_infinite_method_argument_is_refused(value):
    from safeeraser.train.config import load_config

    with pytest.raises(ConfigError, match=f"key 'method_args.beta': must be a finite number"):
        load_config("forget_lora.yaml", ["forget_loss=dpo", f"method_args.beta={value}"], validate_paths=False)


def test_a_full_model_of_another_family_as_the_checkpoint_names_both(tmp_path, vanilla_dir):
    from safeeraser.models.checkpoint import CheckpointError, apply_checkpoint

    other = tmp_path / "qwen-full"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    with pytest.raises(CheckpointError, match=rf"{other}: a full 'qwen2_vl' model, but the base model .* is 'llava'"):
        apply_checkpoint(str(vanilla_dir), str(other))


def test_the_truth_judge_on_other_data_stops_the_grid_before_any_step(tmp_path, mini_dir):
    from safeeraser.pipeline.experiment import run_experiment

    data = json.loads((mini_dir / "all_val.json").read_text())
    for record in data:
        for pair in record["unsafe_pairs"]:
            pair["model_response"] = "Here is how, step by step."  # no harmful code: not the mini
    (tmp_path / "val.json").write_text(json.dumps(data))
    cfg = OmegaConf.create({"workdir": str(tmp_path / "work"), "methods": ["ga"], "judge": {"name": "keyword"},
                            "agreement": ["truth"], "specificity": None,
                            "data": {"train": str(mini_dir / "all_train.json"), "val": str(tmp_path / "val.json")}})
    OmegaConf.save(cfg, tmp_path / "exp.yaml")
    with pytest.raises(ConfigError, match=r"key 'agreement\[0\]': .*val.json: record 0: field "
                                          r"'unsafe_pairs\[0\].model_response' has none of the mini"):
        run_experiment(tmp_path / "exp.yaml", log=lambda *_: None)
    assert not (tmp_path / "work").exists()
