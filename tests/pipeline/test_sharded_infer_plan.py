"""`launcher.infer_shards: N`: each split's inference as N shard steps (one GPU each) and their merge under the
infer step's id and file name, so that the evals, the hash names and the report are those of one step."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from safeeraser.infer.ckpt_infer import meta_path, shard_path
from safeeraser.pipeline.experiment import Runner, load_experiment
from safeeraser.pipeline.steps import is_done, plan_steps
from safeeraser.train.config import ConfigError


def _config(tmp_path, mini_dir, model, workdir="work", **changes):
    # both splits are the first 2 val records: the grid's plumbing is under test, not the data
    data = tmp_path / "two.json"
    if not data.exists():
        recs = json.loads((mini_dir / "all_val.json").read_text())[:2]
        for r in recs:
            r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
        data.write_text(json.dumps(recs))
    cfg = {"name": "s", "workdir": str(tmp_path / workdir),
           "data": {"train": str(data), "val": str(data), "prompt": str(mini_dir / "prompt.json")},
           "model": {"vanilla": str(model)}, "methods": [],
           "infer": {"batch_size": 4, "max_new_tokens": 3, "seed": 0},  # sampled: seeded per record
           "judge": {"name": "keyword"}, "specificity": None, "bootstrap": {"resamples": 100, "seed": 0},
           **changes}
    path = tmp_path / f"{workdir}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _plan(path, *overrides):
    runner = Runner(load_experiment(path, list(overrides)), log=lambda *_: None)
    runner.validate_paths = False  # no model is needed to name the steps
    return runner, {s.id: s for s in plan_steps(runner)}


def test_shard_steps_and_their_merge_keep_the_ids_and_files_of_one_step(tmp_path, mini_dir):
    from safeeraser.pipeline.launchers.remote import RemoteLauncher

    path = _config(tmp_path, mini_dir, tmp_path / "no-model", methods=["ga"])
    _, one = _plan(path)
    runner, two = _plan(path, "launcher.infer_shards=2")
    for run in ("vanilla", "ga"):
        for split in ("train", "val"):
            (infer,) = [s for i, s in one.items() if i.startswith(f"infer:{run}-") and i.endswith(f":{split}")]
            merge = two[infer.id]
            assert merge.kind == "merge" and merge.output == infer.output  # the same final file, the same name
            assert merge.args == {**infer.args, "shards": 2}
            assert merge.deps == [f"{infer.id}:shard-{k}-of-2" for k in (0, 1)]
            for k in (0, 1):
                shard = two[f"{infer.id}:shard-{k}-of-2"]
                assert shard.kind == "infer" and shard.deps == infer.deps  # the forget step, or none
                assert shard.args == {**infer.args, "shard": k, "shards": 2}
                assert shard.output == str(shard_path(infer.output, k, 2))
            evals = [s for s in two.values() if s.kind == "eval" and s.deps == [infer.id]]
            assert len(evals) == 1 and evals[0].args["answers"] == infer.output
    order = list(two)  # the local launcher's order: dependencies first
    assert all(order.index(d) < order.index(i) for i, s in two.items() for d in s.deps)
    assert {i for i in two if ":shard-" not in i} == set(one)

    launcher = RemoteLauncher(runner.cfg)
    launcher.gpus = 8
    assert launcher.resources("infer")[0] == 1 and launcher.resources("merge")[0] == 0

    # done: a shard once its own file is made, every shard and the merge once the merged file is
    (merge,) = [s for i, s in two.items() if i.startswith("infer:vanilla-") and i.endswith(":val")]
    shards = [two[d] for d in merge.deps]
    out = Path(merge.output)
    out.parent.mkdir(parents=True)
    for made in (shard_path(out, 0, 2), out):
        made.write_text("[]")
        meta_path(made).write_text(json.dumps({"skipped_records": []}))
        assert [is_done(runner, s) for s in [*shards, merge]] == ([True, False, False] if made != out else [True] * 3)
    meta_path(out).write_text(json.dumps({"skipped_records": [4]}))  # a record skipped then: answered again
    assert [is_done(runner, s) for s in [*shards, merge]] == [True, False, False]


def test_dry_run_shows_the_shard_steps(tmp_path, mini_dir):
    from safeeraser.pipeline.launchers.plan import describe

    path = _config(tmp_path, mini_dir, tmp_path / "no-model")
    text = describe(load_experiment(path, ["launcher.infer_shards=3", "launcher.name=ray"]))
    lines = [line for line in text.splitlines() if ":val" in line and line.lstrip().startswith("todo  infer:")]
    assert [line.split()[1].rsplit(":", 1)[-1] for line in lines] == ["shard-0-of-3", "shard-1-of-3",
                                                                      "shard-2-of-3", "val"]
    assert all("[1 GPU" in line for line in lines[:3])
    assert "(merges its 3 shards)  [0 GPU" in lines[3]


@pytest.mark.parametrize("value", [0, -2])
def test_infer_shards_below_one_is_a_config_error(tmp_path, mini_dir, value):
    with pytest.raises(ConfigError, match=rf"key 'launcher.infer_shards': a positive integer, got {value}"):
        load_experiment(_config(tmp_path, mini_dir, tmp_path / "m"), [f"launcher.infer_shards={value}"])


def _grid(path, *overrides):
    """The grid's steps run by its launcher (local), then its rows (what run_experiment reports, without
    drawing the report)."""
    from safeeraser.pipeline.launchers import make_launcher

    cfg = load_experiment(path, list(overrides))
    runner = Runner(cfg, log=lambda *_: None)
    with make_launcher(cfg, runner.log) as launch:
        launch.prepare(runner)
        launch.run(plan_steps(runner), runner)
    return runner.rows(), runner


def test_local_grid_with_shards_gives_the_answers_and_rows_of_one_step(tmp_path, mini_dir, tiny_dir):
    rows, one = _grid(_config(tmp_path, mini_dir, tiny_dir, "one"))
    shard_rows, two = _grid(_config(tmp_path, mini_dir, tiny_dir, "two"), "launcher.infer_shards=2")
    assert shard_rows == rows
    # the same answer files, byte for byte, under the same names (and nothing else: the shard files are gone)
    one_files, two_files = ({p.name: p.read_bytes() for p in (tmp_path / w / "infer").iterdir()
                             if not p.name.endswith(".meta.json")} for w in ("one", "two"))
    assert len(one_files) == 2 and two_files == one_files
    assert sorted(s.split(":", 1)[0] + ":" + s.rsplit(":", 1)[-1] for s in two.executed if ":vanilla-" in s) == [
        "eval:train", "eval:val", "infer:shard-0-of-2", "infer:shard-0-of-2", "infer:shard-1-of-2",
        "infer:shard-1-of-2", "merge:train", "merge:val"]
    # answers made by one step count for the shards too: nothing is answered again
    _, again = _grid(_config(tmp_path, mini_dir, tiny_dir, "one"), "launcher.infer_shards=2")
    assert again.executed == []
