"""The launch configs under config/accelerate/ and config/accelerate_config.yaml: each loads with
accelerate's own launcher code, every DeepSpeed "auto" resolves, and the training config is the only
source of accumulation, clipping and batch sizes. No process is launched here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from dist_helpers import REPO, launch_env

import safeeraser.train.distributed as distributed
from safeeraser.train.config import ConfigError, load_config

ACCEL_DIR = REPO / "config" / "accelerate"
YAMLS = sorted(p.relative_to(REPO).as_posix() for p in ACCEL_DIR.glob("*.yaml")) + ["config/accelerate_config.yaml"]
DEEPSPEED_YAMLS = {  # config -> (ZeRO stage, optimizer offload, parameter offload)
    "config/accelerate_config.yaml": (2, "cpu", "none"),
    "config/accelerate/deepspeed_zero2.yaml": (2, "cpu", "none"),
    "config/accelerate/deepspeed_zero3.yaml": (3, "cpu", "cpu"),
}
ONE_SOURCE_KEYS = ("gradient_accumulation_steps", "gradient_clipping", "train_batch_size",
                   "train_micro_batch_size_per_gpu")


def _walk(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _walk(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_the_expected_configs_exist():
    names = {p.name for p in ACCEL_DIR.iterdir()}
    assert {"single_process.yaml", "multi_gpu.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml",
            "cpu_multi.yaml", "ds_zero2_offload.json", "ds_zero3_offload.json"} <= names


@pytest.mark.parametrize("config_file", YAMLS)
def test_accelerate_config_loads_and_names_no_training_setting(config_file):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(REPO / config_file))
    raw = yaml.safe_load((REPO / config_file).read_text())
    keys = {k.split(".")[-1] for k, _ in _walk(raw)}
    assert not keys & {"gradient_accumulation_steps", "gradient_clipping"}, config_file
    if config_file == "config/accelerate_config.yaml":  # the reference's default
        assert (cfg.distributed_type, cfg.num_processes, cfg.mixed_precision) == ("DEEPSPEED", 2, "bf16")
        assert raw["deepspeed_config"]["zero_stage"] == 2
        assert raw["deepspeed_config"]["offload_optimizer_device"] == "cpu"
    if config_file.endswith("single_process.yaml"):
        assert cfg.num_processes == 1
    if config_file.endswith("cpu_multi.yaml"):
        assert cfg.use_cpu and cfg.num_processes == 2 and cfg.mixed_precision == "no"


@pytest.mark.parametrize("name", ["ds_zero2_offload.json", "ds_zero3_offload.json"])
def test_deepspeed_json_leaves_training_settings_auto(name):
    ds = json.loads((ACCEL_DIR / name).read_text())
    for key in ONE_SOURCE_KEYS:
        assert ds[key] == "auto", key
    assert ds["bf16"]["enabled"] == "auto" and ds["fp16"]["enabled"] == "auto"


def launcher_env(config_file: str, *cli: str) -> dict[str, str]:
    """The ACCELERATE_* environment `accelerate launch --config_file ...` gives its processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args = launch_command_parser().parse_args(["--config_file", str(REPO / config_file), *cli, "forget.py"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    assert args.use_deepspeed
    fields = list(defaults.deepspeed_config.keys())
    if mp_from_config:
        fields.append("mixed_precision")
    args.deepspeed_fields_from_accelerate_config = ",".join(fields)
    _, env = prepare_deepspeed_cmd_env(args)
    return {k: v for k, v in env.items() if k.startswith("ACCELERATE_")}


def resolve(config_file: str, monkeypatch, cli=("--mixed_precision", "bf16"), processes=2,
            overrides=("gradient_accumulation_steps=3", "max_grad_norm=0.5", "batch_size=2")) -> dict:
    """The DeepSpeed config a launched run ends up with: accelerate's plugin as the launcher sets it
    up, then the loop's filling from the training config, then what accelerate.prepare fills."""
    from accelerate.utils import DeepSpeedPlugin
    from transformers import LlavaConfig

    for key in [k for k in os.environ if k.startswith("ACCELERATE_")]:
        monkeypatch.delenv(key)
    env = launcher_env(config_file, *cli)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO)  # the YAMLs name their JSON relative to the repository root
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    cfg = load_config("forget_lora.yaml", list(overrides), validate_paths=False)
    acc = SimpleNamespace(num_processes=processes, gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps,
                          state=SimpleNamespace(deepspeed_plugin=plugin))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    distributed.sync_engine_config(acc, cfg, torch.bfloat16)
    distributed.fill_size_autos(acc, SimpleNamespace(config=LlavaConfig()))  # hidden_size only in text_config
    micro = cfg.optim.batch_size
    plugin.deepspeed_config_process(must_match=False, **{  # what accelerate's prepare passes
        "gradient_clipping": 1.0, "zero_optimization.stage3_gather_16bit_weights_on_model_save": False,
        "train_micro_batch_size_per_gpu": micro,
        "train_batch_size": micro * plugin.get_value("gradient_accumulation_steps") * processes})
    return plugin.deepspeed_config


@pytest.mark.parametrize("config_file", sorted(DEEPSPEED_YAMLS))
def test_deepspeed_config_resolves_every_auto_from_the_training_config(config_file, monkeypatch):
    ds = resolve(config_file, monkeypatch)
    autos = [k for k, v in _walk(ds) if v == "auto"]
    assert not autos, autos
    stage, opt_offload, param_offload = DEEPSPEED_YAMLS[config_file]
    zero = ds["zero_optimization"]
    assert zero["stage"] == stage
    assert zero["offload_optimizer"]["device"] == opt_offload
    assert zero.get("offload_param", {}).get("device", "none") == param_offload
    assert ds["gradient_accumulation_steps"] == 3  # from the training config, not accelerate's default 1
    assert ds["gradient_clipping"] == 0.5  # from max_grad_norm, not accelerate's hard-coded 1.0
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["train_batch_size"] == 2 * 3 * 2
    assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False
    if "reduce_bucket_size" in zero:
        assert zero["reduce_bucket_size"] == 4096 * 4096  # LLaVA-7B's text hidden size


def test_reference_default_is_the_zero2_json(monkeypatch):
    inline = resolve("config/accelerate_config.yaml", monkeypatch, cli=())  # bf16 from the YAML itself
    json_cfg = resolve("config/accelerate/deepspeed_zero2.yaml", monkeypatch)

    def essentials(ds):
        zero = ds["zero_optimization"]
        return (zero["stage"], zero["offload_optimizer"]["device"], zero.get("offload_param", {}).get("device", "none"),
                ds["bf16"]["enabled"], *(ds[k] for k in ONE_SOURCE_KEYS))

    assert essentials(inline) == essentials(json_cfg)


def test_resolved_configs_are_valid_deepspeed_configs(monkeypatch):
    """DeepSpeed's own parser (pydantic, unknown keys refused) accepts every resolved config. In a
    subprocess: importing deepspeed picks an accelerator, which this test process should not do."""
    pytest.importorskip("deepspeed")
    configs = {}
    for config_file in sorted(DEEPSPEED_YAMLS):
        ds = resolve(config_file, monkeypatch, processes=1)
        configs[config_file] = {k: v for k, v in ds.items() if k != "steps_per_print"}
    code = ("import json, sys\nfrom deepspeed.runtime.config import DeepSpeedConfig\n"
            "for name, c in json.load(sys.stdin).items():\n"
            "    d = DeepSpeedConfig(c)\n"
            "    print(name, d.zero_optimization_stage, d.gradient_accumulation_steps, d.train_batch_size)\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(configs), capture_output=True, text=True,
                         env=launch_env(), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = sorted(line for line in out.stdout.splitlines() if line.startswith("config/"))
    assert lines == ["config/accelerate/deepspeed_zero2.yaml 2 3 6", "config/accelerate/deepspeed_zero3.yaml 3 3 6",
                     "config/accelerate_config.yaml 2 3 6"]


# --- the loop's checks -------------------------------------------------------------------------


def _fake_acc(gas=2, processes=1, ds=None):
    plugin = None if ds is None else SimpleNamespace(deepspeed_config=ds)
    return SimpleNamespace(num_processes=processes, gradient_accumulation_steps=gas,
                           state=SimpleNamespace(deepspeed_plugin=plugin))


@pytest.fixture
def train_cfg():
    return load_config("forget_lora.yaml", ["gradient_accumulation_steps=2", "batch_size=4"], validate_paths=False)


def test_accumulation_set_in_the_accelerate_config_is_refused(train_cfg, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="only source"):
        distributed.sync_engine_config(_fake_acc(gas=16), train_cfg, torch.float32)


def test_deepspeed_numbers_must_agree_with_the_training_config(train_cfg, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="gradient_accumulation_steps=16"):
        distributed.sync_engine_config(_fake_acc(ds={"gradient_accumulation_steps": 16}), train_cfg, torch.float32)
    with pytest.raises(ConfigError, match="max_grad_norm"):
        distributed.sync_engine_config(_fake_acc(ds={"gradient_clipping": 0.3}), train_cfg, torch.float32)
    agreeing = {"gradient_accumulation_steps": 2, "gradient_clipping": 1.0, "train_micro_batch_size_per_gpu": 4,
                "train_batch_size": 8}
    distributed.sync_engine_config(_fake_acc(ds=dict(agreeing)), train_cfg, torch.float32)  # agreeing numbers pass
    filled = {"gradient_accumulation_steps": "auto"}
    distributed.sync_engine_config(_fake_acc(ds=filled), train_cfg, torch.float32)
    assert filled == agreeing  # "auto" and missing keys take the training config's values


def test_half_precision_model_needs_deepspeed_mixed_precision(train_cfg, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="--mixed_precision bf16"):
        distributed.sync_engine_config(_fake_acc(ds={"bf16": {"enabled": False}}), train_cfg, torch.bfloat16)
    distributed.sync_engine_config(_fake_acc(ds={"bf16": {"enabled": True}}), train_cfg, torch.bfloat16)


def test_processes_that_did_not_join_are_an_error(train_cfg, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="train\\s+alone"):
        distributed.sync_engine_config(_fake_acc(processes=1), train_cfg, torch.float32)


def test_uneven_batches_note():
    assert distributed.uneven_batches_note(24, 2, 2) is None
    assert distributed.uneven_batches_note(25, 4, 1) is None  # one process: a short last batch, nothing repeated
    note = distributed.uneven_batches_note(25, 2, 2)
    assert note and "repeats 3" in note


def test_cpu_backends_for_multi_process_runs_without_gpu(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.accelerator_kwargs() == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "_has_accelerator", lambda: True)
    assert distributed.accelerator_kwargs() == {}
    monkeypatch.setattr(distributed, "_has_accelerator", lambda: False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert distributed.accelerator_kwargs() == {"cpu": True}  # accelerate's MULTI_CPU, gloo
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    fake = SimpleNamespace(get_accelerator=lambda: SimpleNamespace(communication_backend_name=lambda: "gloo"))
    monkeypatch.setitem(sys.modules, "deepspeed", SimpleNamespace(accelerator=fake))
    monkeypatch.setitem(sys.modules, "deepspeed.accelerator", fake)
    (handler,) = distributed.accelerator_kwargs()["kwargs_handlers"]
    assert handler.backend == "gloo"


def test_deepspeed_json_paths_are_relative_to_the_repo():
    for name in ("deepspeed_zero2.yaml", "deepspeed_zero3.yaml"):
        raw = yaml.safe_load((ACCEL_DIR / name).read_text())
        assert (REPO / raw["deepspeed_config"]["deepspeed_config_file"]).is_file()
    assert Path(REPO / "config/accelerate_config.yaml").is_file()
