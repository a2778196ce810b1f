"""Unlearning on another benchmark than SafeEraser: its forget split's items and its retain split's
examples through the one training loop (`benchmark=NAME data_path=FOLDER split=FORGET_SPLIT`)."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from safeeraser.benchmarks import benchmark_for
from safeeraser.train.config import ConfigError, load_config, validate
from safeeraser.train.loop import run_training

CASES = {"mllmu": ("forget_10", 2 * 3, 18 * 3), "fiubench": ("forget5", 2 * 3, 16 * 3),
         "clear": ("forget10", 2 * 2, 18 * 2), "umu": ("forget_10", 2 * 4, 18 * 4)}  # split, forget items, retain pool (the minis' sizes)


@pytest.fixture(scope="module")
def minis(benchmark_mini):
    return {n: benchmark_mini(n) for n in CASES}


def _cfg(tiny_dir, mini_dir, root, name, tmp_path, *more):
    split = CASES[name][0]
    return load_config("forget_tiny.yaml", [
        f"model_path={tiny_dir}", f"benchmark={name}", f"data_path={root}", f"split={split}",
        f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / name}", "batch_size=4",
        "gradient_accumulation_steps=1", "overwrite=true", *more])


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_benchmarks_items_train_through_the_loop(minis, name, tiny_dir, mini_dir, tmp_path):
    split, n_items, n_pool = CASES[name]
    items, pool = benchmark_for(name).training_items(minis[name], split)
    assert (len(items), len(pool)) == (n_items, n_pool)
    assert not {it.forget for it in items} & set(pool)  # nothing to forget is also kept
    with Image.open(items[0].forget.image) as im:  # images as files the prompt encoder opens
        assert im.size[0] > 0
    out = run_training(_cfg(tiny_dir, mini_dir, minis[name], name, tmp_path, "forget_loss=gd", "max_train_steps=2",
                            "warmup_ratio=0"))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss/forget"] > 0 and r["loss/retain"] > 0 for r in rows)


@pytest.mark.parametrize("more, key", [
    (("forget_loss=gdpd",), "forget_loss"),  # no SD images: no PD
    (("split=retain_90",), "split"),
    (("eval_steps=2",), "eval_steps"),
    (("benchmark=nope",), "benchmark"),
])
def test_bad_settings_for_another_benchmark_are_one_config_error(minis, tiny_dir, mini_dir, tmp_path, more, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        validate(_cfg(tiny_dir, mini_dir, minis["mllmu"], "mllmu", tmp_path, *more))


def test_a_file_where_a_benchmark_folder_belongs_is_named(minis, tiny_dir, mini_dir, tmp_path):
    cfg = _cfg(tiny_dir, mini_dir, minis["mllmu"], "mllmu", tmp_path)
    cfg.data.data_path = str(mini_dir / "all_train.json")
    with pytest.raises(ConfigError, match="key 'data_path': .* is not a folder"):
        validate(cfg)


def test_the_vanilla_fine_tune_learns_everything_a_benchmark_teaches(minis, tiny_dir, tmp_path, capsys):
    from safeeraser.cli import main

    assert main(["finetune", "--config-name", "finetune_tiny.yaml", f"model_path={tiny_dir}", "benchmark=fiubench",
                 f"data_path={minis['fiubench']}", "split=forget5", f"save_dir={tmp_path / 'vanilla'}",
                 "max_train_steps=1", "batch_size=64"]) == 0
    assert "no answer check" in capsys.readouterr().out and (tmp_path / "vanilla" / "config.json").exists()
    from safeeraser.train.loop import Trainer

    cfg = load_config("finetune_tiny.yaml", [f"model_path={tiny_dir}", "benchmark=fiubench",
                                             f"data_path={minis['fiubench']}", "split=forget5",
                                             f"save_dir={tmp_path / 'again'}"])
    dataset = Trainer(cfg).setup().dataset
    assert len(dataset) == 20 * 3  # every identity's QAs, forget splits included (its finetune.py reads all 400)


def test_a_profile_in_both_the_forget_and_the_retain_split_is_named(minis, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from safeeraser.io import DataError

    root = tmp_path / "mllmu"
    shutil.copytree(minis["mllmu"], root)
    retain = root / "retain_90" / "train-00000-of-00001.parquet"
    forget = pq.read_table(root / "forget_10" / "train-00000-of-00001.parquet").to_pylist()
    pq.write_table(pa.Table.from_pylist(pq.read_table(retain).to_pylist() + forget[:1]), retain)
    with pytest.raises(DataError, match=r"forget_10 and .*retain_90: 1 record\(s\) in both .*\(e\.g\. '1'\)"):
        benchmark_for("mllmu").training_items(root, "forget_10")
