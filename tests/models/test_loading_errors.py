"""Loading a model or a checkpoint that is missing, damaged, planted or made on another model: one line
naming the path and what is wrong, never a traceback, never code run from a file."""
import json
import logging
import pickle
import shutil

import pytest
import torch

from safeeraser.io import DataError
from safeeraser.models.checkpoint import CheckpointError, apply_checkpoint, load_reference_checkpoint
from safeeraser.models.loading import ModelLoadError, load_model, load_processor


@pytest.fixture(scope="module")
def adapter(vanilla_dir, mini_dir, tmp_path_factory):
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    out = tmp_path_factory.mktemp("adapter")
    return run_training(load_config("forget_tiny.yaml", [
        f"model_path={vanilla_dir}", f"data_path={mini_dir / 'all_train.json'}", f"save_dir={out}",
        "forget_loss=ga", "max_train_steps=1", "batch_size=4", "gradient_accumulation_steps=1", "overwrite=true"]))


def _one_line(exc: BaseException, *names) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


def _copy(adapter, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(adapter, out)
    return out


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- model paths ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("load", [load_model, load_processor])
def test_missing_model_folder_is_one_clear_error(load, tmp_path):
    with pytest.raises(ModelLoadError) as err:
        load(str(tmp_path / "no" / "such-model"))
    assert "no such folder" in _one_line(err, tmp_path / "no" / "such-model")
    assert issubclass(ModelLoadError, DataError)  # the commands print it as one `error:` line
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load(str(tmp_path / "empty"))


def test_forget_with_a_missing_model_is_one_error_line(mini_dir, tmp_path, capsys):
    from safeeraser.cli import main

    rc = main(["forget", "--config-name", "forget_tiny", f"model_path={tmp_path / 'gone'}",
               f"data_path={mini_dir / 'all_train.json'}", f"idk_path={mini_dir / 'prompt.json'}",
               f"save_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: model_path") and err.count("\n") == 1, err


# --- the reference's checkpoint.pt -----------------------------------------------------------------------------

def test_random_bytes_pt_is_one_line(vanilla_dir, tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError) as err:
        apply_checkpoint(str(vanilla_dir), str(bad), "float32")
    _one_line(err, bad)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_payload_in_pt_never_runs(vanilla_dir, tmp_path, writer):
    marker, bad = tmp_path / "payload-ran", tmp_path / "checkpoint.pt"
    if writer == "pickle":
        bad.write_bytes(pickle.dumps({"w": _Payload(marker)}))
    else:
        torch.save({"w": _Payload(marker)}, bad)
    model = load_model(str(vanilla_dir), "float32")
    with pytest.raises(CheckpointError) as err:
        load_reference_checkpoint(model, bad)
    _one_line(err, bad)
    assert not marker.exists()


# --- adapter folders -----------------------------------------------------------------------------------------

def test_truncated_adapter_is_one_line(vanilla_dir, adapter, tmp_path):
    bad = _copy(adapter, tmp_path)
    weights = bad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        apply_checkpoint(str(vanilla_dir), str(bad), "float32")
    assert "corrupt or truncated" in _one_line(err, weights)


def test_adapter_folder_without_adapter_config_is_one_line(vanilla_dir, adapter, tmp_path):
    bad = _copy(adapter, tmp_path)
    (bad / "adapter_config.json").unlink()
    with pytest.raises(CheckpointError) as err:
        apply_checkpoint(str(vanilla_dir), str(bad), "float32")
    assert "no adapter_config.json" in _one_line(err, bad)


def test_adapter_of_other_shapes_is_one_line(adapter, tmp_path):
    from safeeraser.models.tiny import make_tiny

    small = make_tiny(tmp_path / "small", size="small", seed=0)
    with pytest.raises(CheckpointError) as err:
        apply_checkpoint(str(small), str(adapter), "float32")
    assert "does not fit this model's shapes" in _one_line(err, adapter)


# --- which base model an adapter was made on ----------------------------------------------------------------------

def test_adapter_records_its_base_model(adapter, vanilla_dir):
    from safeeraser.provenance import model_identity

    record = json.loads((adapter / "safeeraser_adapter.json").read_text())
    assert record["base_model"] == model_identity(str(vanilla_dir))
    assert len(record["config_sha256"]) == 64 and "packages" in record["environment"]


def test_adapter_on_another_base_model_warns_with_both_hashes(adapter, vanilla_dir, tiny_dir, caplog):
    from safeeraser.provenance import model_identity

    with caplog.at_level(logging.WARNING):
        apply_checkpoint(str(vanilla_dir), str(adapter), "float32")
    assert "was made on base model" not in caplog.text  # its own base: silent
    with caplog.at_level(logging.WARNING):
        apply_checkpoint(str(tiny_dir), str(adapter), "float32")
    lines = [r.getMessage() for r in caplog.records if "was made on base model" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    for text in (vanilla_dir, tiny_dir, model_identity(str(vanilla_dir))["config_sha256"],
                 model_identity(str(tiny_dir))["config_sha256"]):
        assert str(text) in lines[0]


def test_adapter_of_another_family_is_refused(adapter, vanilla_dir, tmp_path):
    other = _copy(adapter, tmp_path)
    record = json.loads((other / "safeeraser_adapter.json").read_text())
    record["base_model"]["model_type"] = "qwen2_vl"
    (other / "safeeraser_adapter.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError) as err:
        apply_checkpoint(str(vanilla_dir), str(other), "float32")
    assert "made on a 'qwen2_vl' model" in _one_line(err, other)


def test_unknown_dtype_is_one_line_from_ckpt_infer(tmp_path, vanilla_dir, mini_dir, capsys):
    from safeeraser.infer.ckpt_infer import main

    rc = main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
               "--output_file", str(tmp_path / "o.json"), "--dtype", "float13"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown dtype 'float13'" in err and "Traceback" not in err
