"""Training failures that must not lose work or pass silently: kills while saving, planted pickles,
divergence, resumes with other settings, bad values, unwritable outputs."""
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import safeeraser.train.loop as loop
from safeeraser.train.config import ConfigError, config_from, load_config

COMMON = ("forget_loss=gdpd", "max_train_steps=6", "save_steps=2", "lr=5e-3", "LoRA.dropout=0.1",
          "gradient_accumulation_steps=2")


def _assert_same_adapter(a_dir: Path, b_dir: Path) -> None:
    a, b = load_file(str(a_dir / "adapter_model.safetensors")), load_file(str(b_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading the model fails the test: the error under test must come first."""
    import safeeraser.models.loading as loading

    def refuse(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_model", refuse)


# --- 1. a kill while saving ------------------------------------------------------------------------------

def test_kill_during_a_checkpoint_save_resumes_from_the_previous_one(forget_cfg, tmp_path, monkeypatch):
    full = loop.run_training(forget_cfg(*COMMON, f"save_dir={tmp_path / 'full'}"))
    real = loop.atomic_write_json

    def killed_while_saving_4(path, obj, *a, **k):
        # every other file of checkpoint-4 is written by now: the state file is the last
        if Path(path).name == "trainer_state.json" and "checkpoint-4" in str(path):
            raise KeyboardInterrupt("simulated kill")
        return real(path, obj, *a, **k)

    part = tmp_path / "part"
    monkeypatch.setattr(loop, "atomic_write_json", killed_while_saving_4)
    with pytest.raises(KeyboardInterrupt):
        loop.run_training(forget_cfg(*COMMON, f"save_dir={part}"))
    monkeypatch.setattr(loop, "atomic_write_json", real)
    assert not (part / "checkpoint-4").exists() and (part / "checkpoint-2" / "trainer_state.json").is_file()
    assert (part / ".checkpoint-4.tmp").is_dir()  # the cut-off save, under a name `latest` never picks
    resumed = loop.run_training(forget_cfg(*COMMON, f"save_dir={part}", "resume_from_checkpoint=latest"))
    _assert_same_adapter(full, resumed)
    assert _steps(resumed) == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in part.glob("*checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]


def test_latest_skips_temporary_and_unfinished_folders(tmp_path):
    from safeeraser.train.state import latest_checkpoint

    for name, complete in (("checkpoint-2", True), ("checkpoint-10", False), (".checkpoint-12.tmp", True),
                           ("checkpoint-x", True)):
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-2"


def test_publish_replaces_an_older_checkpoint_of_the_same_step(tmp_path):
    from safeeraser.train.state import publish

    final, tmp = tmp_path / "checkpoint-2", tmp_path / ".checkpoint-2.tmp"
    final.mkdir()
    (final / "stale.json").write_text("old")
    tmp.mkdir()
    (tmp / "trainer_state.json").write_text("new")
    publish(tmp, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    assert [p.name for p in final.iterdir()] == ["trainer_state.json"]


# --- 2. nothing is unpickled on resume ---------------------------------------------------------------------

class _Payload:
    """Unpickled, it creates `marker`: proof that the file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_unpickles_planted_files(forget_cfg, tmp_path, kill_at_step):
    full = loop.run_training(forget_cfg(*COMMON, f"save_dir={tmp_path / 'full'}"))
    part = tmp_path / "part"
    restore = kill_at_step(10)
    with pytest.raises(KeyboardInterrupt):
        loop.run_training(forget_cfg(*COMMON, f"save_dir={part}"))
    restore()
    ckpt = part / "checkpoint-4"
    marker = tmp_path / "payload-ran"
    # accelerate's file names, and every pickle-like file that is there
    planted = {"random_states_0.pkl", "custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin",
               "pytorch_model.bin"} | {p.name for p in ckpt.iterdir() if p.suffix in (".pkl", ".bin", ".pt")}
    for name in planted:
        (ckpt / name).write_bytes(pickle.dumps(_Payload(marker)))
    resumed = loop.run_training(forget_cfg(*COMMON, f"save_dir={part}", "resume_from_checkpoint=latest"))
    assert not marker.exists()
    _assert_same_adapter(full, resumed)


def test_checkpoints_hold_safetensors_and_json_only(forget_cfg, tmp_path):
    out = loop.run_training(forget_cfg("forget_loss=ga", "max_train_steps=1", "save_steps=1", f"save_dir={tmp_path}"))
    files = sorted(p.name for p in (out / "checkpoint-1").iterdir())
    assert files and all(name.endswith((".safetensors", ".json")) for name in files), files
    # a damaged file is one error naming it
    weights = out / "checkpoint-1" / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match=f"{weights} is unreadable"):
        loop.run_training(forget_cfg("forget_loss=ga", "max_train_steps=2", "save_steps=1", f"save_dir={tmp_path}",
                                     "resume_from_checkpoint=latest"))


def test_an_old_pickle_checkpoint_is_refused_not_loaded(forget_cfg, tmp_path, no_model_load):
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2, "epoch": 0, "batches_in_epoch": 2}))
    with pytest.raises(ConfigError, match="older version in accelerate's pickle format"):
        loop.run_training(forget_cfg(f"save_dir={tmp_path}", "resume_from_checkpoint=latest"))


# --- 3. divergence ---------------------------------------------------------------------------------------

class _NanGrad(torch.autograd.Function):
    """The identity forward, NaN gradients backward: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


DIVERGE = ("forget_loss=ga", "max_train_steps=4", "save_steps=1", "gradient_accumulation_steps=1")


def test_nan_gradient_norm_stops_the_run_before_it_is_applied(forget_cfg, tmp_path, monkeypatch):
    import safeeraser.train.step as step

    original, calls = step.compute_loss, {"n": 0}

    def nan_gradient_on_step_2(*a, **k):
        loss, parts = original(*a, **k)
        calls["n"] += 1
        return (_NanGrad.apply(loss) if calls["n"] == 2 else loss), parts

    monkeypatch.setattr(step, "compute_loss", nan_gradient_on_step_2)
    with pytest.raises(loop.TrainingDiverged, match="gradient norm is nan at step 2") as err:
        loop.run_training(forget_cfg(*DIVERGE, f"save_dir={tmp_path}"))
    assert f"last good checkpoint: {tmp_path / 'checkpoint-1'}" in str(err.value)
    assert not (tmp_path / "checkpoint-2").exists()
    weights = load_file(str(tmp_path / "checkpoint-1" / "trainable.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_checkpoint_with_non_finite_weights_is_not_written(forget_cfg, tmp_path, monkeypatch):
    calls = {"n": 0}

    class InfOnSecondStep(torch.optim.AdamW):
        def step(self, closure=None):
            out = super().step(closure)
            calls["n"] += 1
            if calls["n"] == 2:
                with torch.no_grad():
                    self.param_groups[0]["params"][0].fill_(float("inf"))
            return out

    monkeypatch.setattr(torch.optim, "AdamW", InfOnSecondStep)
    with pytest.raises(loop.TrainingDiverged, match="not finite at step 2") as err:
        loop.run_training(forget_cfg(*DIVERGE, f"save_dir={tmp_path}"))
    assert f"last good checkpoint: {tmp_path / 'checkpoint-1'}" in str(err.value)
    assert not (tmp_path / "checkpoint-2").exists() and not list(tmp_path.glob(".checkpoint-2*"))


# --- 4. a resume must train what the checkpoint trained -----------------------------------------------------

def test_resume_with_other_settings_is_refused_before_the_model_loads(forget_cfg, tmp_path, kill_at_step,
                                                                      monkeypatch):
    part = tmp_path / "part"
    restore = kill_at_step(10)
    with pytest.raises(KeyboardInterrupt):
        loop.run_training(forget_cfg(*COMMON, f"save_dir={part}"))
    restore()
    config_before = (part / "config.yaml").read_text()
    import safeeraser.models.loading as loading

    real_load = loading.load_model
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(ConfigError) as err:
        loop.run_training(forget_cfg(*COMMON, f"save_dir={part}", "resume_from_checkpoint=latest",
                                     "forget_loss=npo", "lr=1e-3", "max_train_steps=8"))
    msg = str(err.value)
    assert "forget_loss: 'gdpd' -> 'npo'" in msg and "lr: 0.005 -> 0.001" in msg
    assert "max_train_steps:" not in msg  # the budget may change
    assert (part / "config.yaml").read_text() == config_before
    # changing only the budget resumes
    monkeypatch.setattr(loading, "load_model", real_load)
    out = loop.run_training(forget_cfg(*COMMON, f"save_dir={part}", "resume_from_checkpoint=latest", "save_steps=3"))
    assert _steps(out) == [1, 2, 3, 4, 5, 6]


# --- 6. values that train nothing or divide by zero ---------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("LoRA.alpha=0", "key 'LoRA.alpha': must be > 0"),
    ("npo_beta=-1", "key 'npo_beta': must be > 0"),
    ("simnpo_beta=0", "key 'simnpo_beta': must be > 0"),
    ("simnpo_gamma=-0.5", "key 'simnpo_gamma': must be >= 0"),
    ("LoRA.target_modules='.*(q_proj'", "key 'LoRA.target_modules': '.*\\(q_proj' is not a valid regex"),
])
def test_coefficients_out_of_range_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("forget_lora.yaml", [override], validate_paths=False)


@pytest.mark.parametrize("method, arg, message", [
    ("dpo", "beta=-1", "key 'method_args.beta': must be > 0"),
    ("idkdpo", "beta=0", "key 'method_args.beta': must be > 0"),
    ("undial", "strength=-3", "key 'method_args.strength': must be > 0"),
    ("wga", "beta=-1", "key 'method_args.beta': must be >= 0"),
    ("rmu", "layer=-1", "key 'method_args.layer': must be an integer >= 0"),
    ("rmu", "layer=1.5", "key 'method_args.layer': must be an integer >= 0"),
    ("rmu", "steering=0", "key 'method_args.steering': must be > 0"),
    ("rmu", "steering=big", "key 'method_args.steering': must be a number"),
    ("rmu", "positions=image", "key 'method_args.positions': must be one of question_answer, answer, all, got 'image'"),
    ("scrub", "msteps=-1", "key 'method_args.msteps': must be an integer >= 0"),
])
def test_method_arguments_out_of_range_are_config_errors(method, arg, message):
    with pytest.raises(ConfigError, match=message):
        load_config("forget_lora.yaml", [f"forget_loss={method}", f"method_args.{arg}"], validate_paths=False)
    load_config("forget_lora.yaml", [f"forget_loss={method}"], validate_paths=False)  # the defaults pass


@pytest.mark.parametrize("override, message", [
    ("LoRA.target_layers=[]", "a non-empty list of layer indices"),
    ("LoRA.target_layers=[1,-1]", "a non-empty list of layer indices"),
    ("LoRA.target_layers=7", "a non-empty list of layer indices"),
])
def test_bad_lora_target_layers_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=f"key 'LoRA.target_layers': {message}"):
        load_config("forget_lora.yaml", [override], validate_paths=False)
    with pytest.raises(ConfigError, match="key 'LoRA.target_layers': applies to a list of projection names"):
        load_config("forget_lora.yaml", ["LoRA.target_modules=.*down_proj", "LoRA.target_layers=[1]"],
                    validate_paths=False)


def test_lora_target_matching_nothing_names_the_key_and_the_layers(vanilla_dir):
    from safeeraser.models.families import family_of_path
    from safeeraser.models.loading import load_model
    from safeeraser.train.model_setup import prepare_model

    model = load_model(str(vanilla_dir), "float32")
    cfg = load_config("forget_lora.yaml", ["LoRA.target_modules=[q_proj,qproj]"], validate_paths=False)
    with pytest.raises(ConfigError, match=r"key 'LoRA.target_modules': qproj matches no module.*q_proj") as err:
        prepare_model(model, cfg, family_of_path(str(vanilla_dir)))
    assert "\n" not in str(err.value)


# --- 8. an output folder that cannot be written -------------------------------------------------------------

def test_unwritable_save_dir_fails_before_the_model_loads(forget_cfg, tmp_path, no_model_load):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="key 'save_dir': cannot write in folder"):
        loop.run_training(forget_cfg(f"save_dir={blocker / 'run'}"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_save_dir_fails_before_the_model_loads(forget_cfg, tmp_path, no_model_load):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="key 'save_dir': cannot write in folder"):
            loop.run_training(forget_cfg(f"save_dir={ro}"))
    finally:
        ro.chmod(0o755)


# --- 9. idk_path defaults to the prompt.json beside the data ------------------------------------------------

def test_idk_path_defaults_to_prompt_json_beside_data(mini_dir, tmp_path, caplog):
    cfg = load_config("forget_lora.yaml", [f"data_path={mini_dir / 'all_train.json'}", "forget_loss=po",
                                           f"idk_path={tmp_path / 'missing.json'}"])
    assert cfg.data.idk_path == str(mini_dir / "prompt.json")
    assert "beside data_path" in caplog.text
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(mini_dir / "all_train.json", alone / "all_train.json")
    with pytest.raises(ConfigError, match="key 'idk_path': file .* not found"):
        load_config("forget_lora.yaml", [f"data_path={alone / 'all_train.json'}", "forget_loss=po",
                                         f"idk_path={tmp_path / 'missing.json'}"])


# --- 10. model_family is checked against the checkpoint ------------------------------------------------------

def test_model_family_must_match_the_checkpoint(forget_cfg, tmp_path, no_model_load):
    with pytest.raises(ConfigError, match="key 'model_family': 'qwen2_vl', but model_path .* is a 'llava' checkpoint"):
        loop.run_training(forget_cfg("model_family=qwen2_vl", f"save_dir={tmp_path}"))


def test_model_family_names_accepted(caplog):
    from safeeraser.train.config import check_model_family

    for name in ("", "llava", "llava-v1.5-vicuna"):
        check_model_family(config_from(model_family=name, model_path="m"), "llava")
    assert not caplog.records
    with pytest.raises(ConfigError, match="model_family"):
        check_model_family(config_from(model_family="llava_next", model_path="m"), "llava")
    # the reference's boilerplate value, in configs reused for every family: noted, not refused
    check_model_family(config_from(model_family="llava-v1.5-vicuna", model_path="m"), "qwen2_vl")
    assert "is ignored: model_path 'm' is a 'qwen2_vl' checkpoint" in caplog.text


# --- 11-13. the command line -----------------------------------------------------------------------------

def test_forget_help_lists_methods_and_keys(capsys):
    from safeeraser.cli import main

    with pytest.raises(SystemExit) as done:
        main(["forget", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for text in ("npo ", "simnpo ", "scrub ", "gdpd", "lr=0.0001", "LoRA.alpha=256", "forget_loss=ga",
                 "save_steps=0"):
        assert text in out, text


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """cli forget without training or path checks: the configs it would train, in order."""
    seen = []

    def record(cfg, records=None):
        seen.append(cfg)
        return tmp_path

    monkeypatch.setattr(loop, "run_training", record)
    monkeypatch.setattr("safeeraser.train.config.validate", lambda cfg, validate_paths=True: None)
    # nor data: the CLI reads the data files before the loop, and a fresh clone has no dataset/mini
    monkeypatch.setattr("safeeraser.train.config.load_records_first", lambda cfg: [])
    return seen


def test_saved_to_is_printed_by_the_main_process_only(monkeypatch, capsys, no_training):
    import safeeraser.cli as cli

    monkeypatch.setattr(cli, "is_main_process", lambda: False)
    assert cli.main(["forget", "forget_loss=ga"]) == 0
    assert "saved to" not in capsys.readouterr().out
    monkeypatch.setattr(cli, "is_main_process", lambda: True)
    assert cli.main(["forget", "forget_loss=ga"]) == 0
    assert capsys.readouterr().out.count("saved to") == 1


def test_config_name_without_extension(tmp_path, no_training):
    import safeeraser.cli as cli

    assert cli.main(["forget", "--config-name", "forget_tiny"]) == 0
    assert no_training[-1].model.model_path == "models/tiny-llava-vanilla"
    (tmp_path / "mine.yaml").write_text("lr: 0.123\n")
    assert cli.main(["forget", "--config-path", str(tmp_path), "--config-name", "mine"]) == 0
    assert no_training[-1].optim.lr == 0.123
    with pytest.raises(ConfigError, match="config file 'nope' not found"):
        load_config("nope", validate_paths=False)


@pytest.mark.parametrize("override", ["data_path={bad}", "LoRA.alpha=0", "forget_loss=nope"])
def test_bad_input_to_forget_is_reported_before_torch_is_imported(tmp_path, override):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff[{}]")
    code = ("import sys; from safeeraser.cli import main; "
            f"rc = main(['forget', '--config', 'forget_tiny.yaml', {override.format(bad=bad)!r}]); "
            "print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
