"""report_to=tensorboard|wandb: the losses, lr, gradient norm and in-training eval reach the tracker's own
files at their steps; a missing tracker package is one ConfigError before any model loads."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from safeeraser.train.config import ConfigError

# Two steps, evaluated every second: eval/* at step 2 only, so a metric logged at the wrong step shows.
TRACKED = ("loss/total", "loss/forget", "lr", "grad_norm",
           "eval/forget_nll", "eval/retain_nll", "eval/pd_nll")


def _cfg(tiny_dir, mini_dir, out, *overrides):
    from safeeraser.train.config import load_config

    return load_config("forget_tiny.yaml", [
        f"model_path={tiny_dir}", f"data_path={mini_dir / 'all_train.json'}", f"idk_path={mini_dir / 'prompt.json'}",
        f"save_dir={out}", "batch_size=3", "gradient_accumulation_steps=1", "overwrite=true", "forget_loss=ga",
        "max_train_steps=2", "eval_steps=2", "eval_samples=2", *overrides])


def _logged(save_dir: Path) -> dict[str, dict[int, float]]:
    """key -> {step: value} from log.jsonl."""
    out: dict[str, dict[int, float]] = {}
    for line in (save_dir / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        for k in TRACKED:
            if k in row:
                out.setdefault(k, {})[row["step"]] = row[k]
    return out


def _check(tracked: dict[str, dict[int, float]], logged: dict[str, dict[int, float]]) -> None:
    assert set(logged["eval/forget_nll"]) == {2} and set(logged["loss/total"]) == {1, 2}
    for key in TRACKED:
        assert set(tracked[key]) == set(logged[key]), key
        for step, value in logged[key].items():
            assert tracked[key][step] == pytest.approx(value, rel=1e-6), (key, step)


def test_tensorboard_event_file_holds_losses_lr_grad_norm_and_eval(tiny_dir, mini_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from safeeraser.train.loop import run_training

    # a nested config given to tensorboard's hparams used to stop the run at its first step
    save_dir = run_training(_cfg(tiny_dir, mini_dir, tmp_path / "run", "report_to=tensorboard"))
    events = EventAccumulator(str(save_dir / "safeeraser"))  # accelerate's folder: project_dir/run name
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert set(TRACKED) <= tags
    _check({k: {e.step: e.value for e in events.Scalars(k)} for k in TRACKED}, _logged(save_dir))
    hparams = (save_dir / "safeeraser").glob("*/hparams.yml")
    assert "LoRA.r: 16" in next(hparams).read_text()  # the config, flat


def wandb_records(path: Path):
    """The protobuf records of an offline run's .wandb file: a ':W&B' header of 7 bytes, then LevelDB's
    log format (32 KiB blocks; each chunk a 7-byte header: crc32c, length, type FULL/FIRST/MIDDLE/LAST)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < 7 or kind == 0:  # a block's zero-filled tail
            pos += left
            continue
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a record is complete
            record = Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


def test_wandb_offline_run_holds_the_same_keys_and_values(tiny_dir, mini_dir, tmp_path, monkeypatch):
    from safeeraser.train.loop import run_training

    for var, value in {"WANDB_MODE": "offline", "WANDB_DIR": tmp_path, "WANDB_CONFIG_DIR": tmp_path / "config",
                       "WANDB_CACHE_DIR": tmp_path / "cache", "WANDB_DATA_DIR": tmp_path / "data",
                       "WANDB_SILENT": "true", "WANDB_CONSOLE": "off", "WANDB_DISABLE_GIT": "true",
                       "WANDB_DISABLE_CODE": "true", "WANDB__DISABLE_STATS": "true", "WANDB__DISABLE_META": "true",
                       "WANDB__DISABLE_MACHINE_INFO": "true", "WANDB__SAVE_REQUIREMENTS": "false"}.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    import wandb

    # wandb keeps its settings (WANDB_DIR) per process from its first run on: start and end clean
    wandb.teardown()
    try:
        save_dir = run_training(_cfg(tiny_dir, mini_dir, tmp_path / "run", "report_to=wandb"))
    finally:
        wandb.teardown()
    # with the run, not in the working folder or WANDB_DIR
    [run_file] = (save_dir / "wandb").glob("offline-run-*/run-*.wandb")
    tracked: dict[str, dict[int, float]] = {}
    config_keys, kinds = set(), []
    for record in wandb_records(run_file):
        kinds.append(kind := record.WhichOneof("record_type"))
        if kind == "history":
            # wandb 0.30 names each item by nested_key (one part for our flat keys), older ones by key
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            for k in TRACKED:
                if k in items:
                    tracked.setdefault(k, {})[items["step"]] = items[k]
        elif kind == "config":
            config_keys |= {i.key or "/".join(i.nested_key) for i in record.config.update}
    assert kinds.count("history") == 2, kinds
    _check(tracked, _logged(save_dir))
    assert {"LoRA.r", "forget_loss", "eval_steps"} <= config_keys


@pytest.mark.parametrize("tracker, hide", [
    ("tensorboard", "find_spec"),  # neither tensorboard nor tensorboardX found
    ("wandb", "sys.modules"),  # an import of wandb would fail
])
def test_a_missing_tracker_package_is_one_config_error_before_any_model_loads(
        tracker, hide, tiny_dir, mini_dir, tmp_path, monkeypatch):
    from safeeraser.train.loop import Trainer

    if hide == "find_spec":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a))
    else:
        monkeypatch.setitem(sys.modules, "wandb", None)

    def no_model(*_):
        raise AssertionError("the model was loaded")

    with pytest.raises(ConfigError) as err:
        Trainer(_cfg(tiny_dir, mini_dir, tmp_path / "run", f"report_to={tracker}"), load_model=no_model).setup()
    assert f"report_to={tracker} needs the {tracker} package" in str(err.value)
    assert f"pip install {tracker}" in str(err.value)


def test_the_tracker_config_is_flat_scalars(tiny_dir, mini_dir, tmp_path):
    from safeeraser.train.tracking import check_tracker, tracker_config

    train, val = mini_dir / "all_train.json", mini_dir / "all_val.json"
    cfg = _cfg(tiny_dir, mini_dir, tmp_path / "run", f"data_path=[{train},{val}]")
    flat = tracker_config(cfg)
    assert flat["LoRA.r"] == 16 and flat["data_path"] == f"{train},{val}"
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    check_tracker(cfg)  # report_to=none: nothing to check
    check_tracker(_cfg(tiny_dir, mini_dir, tmp_path / "run", "report_to=tensorboard"))  # installed here
