"""ckpt_infer sharded: N runs on contiguous blocks of the records, then their merge, give the file one run
gives (sampled answers included: they are seeded per record), and a merge refuses shards it cannot join."""
from __future__ import annotations

import json
import shutil

import pytest

from safeeraser.infer import ckpt_infer
from safeeraser.infer.settings import InferSettings
from safeeraser.io import DataError

LIMIT = 5  # blocks of 2 and 3 records: the limit applies before the split


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_dir, mini_dir):
    """The eval file (record 3's image unreadable: a skip inside shard 1), one run's output, and the two
    shards' files kept aside before any merge."""
    root = tmp_path_factory.mktemp("shards")
    recs = json.loads((mini_dir / "all_val.json").read_text())
    for r in recs:
        r["image_path"] = str(mini_dir / r["image_path"])
        r["SDImage_path"] = str(mini_dir / r["SDImage_path"])
    broken = root / "Weapon" / "broken.png"  # a category folder, as the benchmark's images are in
    broken.parent.mkdir()
    broken.write_text("not an image")
    recs[3]["image_path"] = str(broken)
    data = root / "val.json"
    data.write_text(json.dumps(recs))

    def settings(out, **extra):
        # sampled (not greedy), small batches: each shard's batches hold other records than one run's
        flags = {"limit": LIMIT, "max_new_tokens": 6, "batch_size": 3, "seed": 5, **extra}
        return InferSettings(eval_file=str(data), model_path=str(tiny_dir), output_file=str(out), **flags)

    one = ckpt_infer.run_inference(settings(root / "one.json"))
    out = root / "sharded.json"
    parts = [ckpt_infer.run_inference(settings(out, shards=2, shard_index=k)) for k in (0, 1)]
    kept = root / "kept"
    kept.mkdir()
    for k in (0, 1):
        for path in (ckpt_infer.shard_path(out, k, 2), ckpt_infer.meta_path(ckpt_infer.shard_path(out, k, 2))):
            shutil.copy(path, kept / path.name)
    return {"settings": settings, "one": one, "parts": parts, "out": out, "kept": kept, "root": root}


def _restore(made, into):
    """The kept shard files, as they were before any merge, beside output `into`."""
    for path in made["kept"].iterdir():
        shutil.copy(path, into.parent / path.name.replace(made["out"].stem, into.stem, 1))


def test_merged_shards_are_the_file_of_one_run(made):
    root, out = made["root"], made["out"]
    assert [p["records"] + p["skipped"] for p in made["parts"]] == [2, 3]  # records [0, 2) and [2, 5)
    assert made["parts"][1]["skipped_records"] == [3]
    assert ckpt_infer.shard_path(out, 1, 2).name == "sharded.shard-1-of-2.json"
    summary = ckpt_infer.run_inference(made["settings"](out, shards=2, merge_shards=True))
    assert "merged from 2 shards" in ckpt_infer.format_summary(summary)

    one = json.loads((root / "one.json").read_text())
    assert len(one) == LIMIT - 1
    assert json.loads(out.read_text()) == one
    meta, one_meta = (json.loads(ckpt_infer.meta_path(p).read_text()) for p in (out, root / "one.json"))
    assert meta["records"] == one_meta["records"] == LIMIT - 1
    assert meta["skipped_records"] == one_meta["skipped_records"] == [3]
    assert {k: meta[k] for k in ckpt_infer.ANSWER_PARTS} == {k: one_meta[k] for k in ckpt_infer.ANSWER_PARTS}
    assert meta["run"]["shards"] == 2 and "shard_index" not in meta["run"]
    # the merged file holds everything: the shard files are gone, partial files included
    assert sorted(p.name for p in root.glob("sharded*")) == ["sharded.json", "sharded.json.meta.json"]


def test_merge_refuses_a_missing_shard_or_one_made_otherwise(made, tmp_path):
    out = tmp_path / "answers.json"
    _restore(made, out)
    missing = ckpt_infer.shard_path(out, 1, 2)
    missing.unlink()
    with pytest.raises(DataError, match=rf"{missing}: shard 1 of 2 is missing; answer it with --shards 2 "
                                        "--shard_index 1"):
        ckpt_infer.run_inference(made["settings"](out, shards=2, merge_shards=True))

    _restore(made, out)
    other = ckpt_infer.meta_path(ckpt_infer.shard_path(out, 1, 2))
    meta = json.loads(other.read_text())
    meta["generation"]["max_new_tokens"] = 7  # as if shard 1 was answered with other flags
    other.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=rf"{missing}: shard 1 of 2 was made by another run than this merge.*"
                                        r"generation.max_new_tokens 7 -> 6"):
        ckpt_infer.run_inference(made["settings"](out, shards=2, merge_shards=True))

    _restore(made, out)  # the merge's own flags differ from both shards': shard 0 is named first
    with pytest.raises(DataError, match=rf"{ckpt_infer.shard_path(out, 0, 2)}: .*generation.top_p 0.9 -> 0.5"):
        ckpt_infer.run_inference(made["settings"](out, shards=2, merge_shards=True, top_p=0.5))
    # shards of another --limit are other blocks of records
    with pytest.raises(DataError, match=r"shard-0-of-2.json: .*run.limit 5 -> 4"):
        ckpt_infer.run_inference(made["settings"](out, shards=2, merge_shards=True, limit=4))
    assert not out.exists()  # nothing half-merged


@pytest.mark.parametrize("flags, message", [
    (["--shards", "0"], "--shards must be a positive count, got 0"),
    (["--shards", "2", "--shard_index", "2"], "--shard_index must be from 0 to 1 (one of --shards 2), got 2"),
    (["--shard_index", "-1"], "--shard_index must be from 0 to 0 (one of --shards 1), got -1"),
    (["--merge_shards"], "--shards must be 2 or more with --merge_shards, got 1"),
])
def test_bad_shard_flags_are_one_error_line(tmp_path, mini_dir, capsys, flags, message):
    argv = ["--eval_file", str(mini_dir / "all_val.json"), "--model_path", "org/model", "--output_file",
            str(tmp_path / "out.json"), *flags]
    assert ckpt_infer.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_shards_are_no_infer_block_key():
    from safeeraser.infer.settings import SettingError, check_block

    with pytest.raises(SettingError, match="shards: set per step by the pipeline: .*launcher.infer_shards"):
        check_block({"shards": 2})
    assert not set(ckpt_infer.ANSWER_FLAGS) & {"shards", "shard_index", "merge_shards"}
