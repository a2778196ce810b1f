"""MLLMU-Bench on the benchmark seam: its mini written in the released layout and read back, bad files
named, its tasks' scores against hand computations."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.mllmu import (chosen_letter, classification_accuracy, cloze_accuracy, generation_rouge,
                                         read)
from safeeraser.io import DataError

RELEASED_PROFILE = ["image", "ID", "biography", "question", "answer", "Classification_Task", "Generation_Task",
                    "Mask_Task"]


@pytest.fixture(scope="module")
def mini(benchmark_mini):
    return benchmark_mini("mllmu")


def test_the_mini_is_in_the_released_layout_and_reads_back(mini):
    sizes = {s: len(read(mini, s)) for s in benchmark_for("mllmu").splits}
    assert sizes == {"forget_5": 1, "forget_10": 2, "forget_15": 3, "retain_95": 19, "retain_90": 18,
                     "retain_85": 17, "Full_Set": 20, "Retain_Set": 4, "Test_Set": 20}
    schema = pq.read_schema(mini / "forget_10" / "train-00000-of-00001.parquet")
    assert schema.names == RELEASED_PROFILE
    assert pq.read_schema(mini / "Full_Set" / "train-00000-of-00001.parquet").names == RELEASED_PROFILE + ["Directory"]
    assert pq.read_schema(mini / "Test_Set" / "train-00000-of-00001.parquet").names == [
        "ID", "images", "Classification_Task", "Generation_Task", "Mask_Task"]
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    row = read(mini, "forget_5")[0]
    q = row["Classification_Task"]["Image_Textual_Questions"][0]
    assert set(q) == {"Question", "Options", "Correct_Answer"} and set(q["Options"]) == {"A", "B", "C", "D"}
    assert {t["Type"] for t in row["Generation_Task"]} == {"Image_Textual", "Pure_Text"}
    assert all("__" in t["Question"] for t in row["Mask_Task"])
    # the forget configs are the first profiles, their retain configs the rest
    ids = [r["ID"] for r in read(mini, "Full_Set")]
    assert [r["ID"] for r in read(mini, "forget_10")] + [r["ID"] for r in read(mini, "retain_90")] == ids
    assert read(mini, "forget_5") == read(mini, "forget_10")[:1]


def _rewrite(mini, tmp_path, split, change):
    """A copy of one split's file with `change` applied to its first row."""
    rows = pq.read_table(mini / split / "train-00000-of-00001.parquet").to_pylist()
    change(rows[0])
    (tmp_path / split).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / split / "train-00000-of-00001.parquet")
    return tmp_path


def _bad_answer(row):
    row["Classification_Task"]["Pure_Text_Questions"][0]["Correct_Answer"] = "E"


def _bad_image(row):
    row["image"] = {"bytes": b"not an image", "path": "x.png"}


def _no_blank(row):
    row["Mask_Task"][1]["Question"] = "no blank here"


@pytest.mark.parametrize("change, field", [
    (_bad_answer, "Classification_Task.Pure_Text_Questions[0].Correct_Answer"),
    (_bad_image, "image"),
    (_no_blank, "Mask_Task[1].Question"),
    (lambda row: row.pop("biography"), "biography"),
])
def test_a_bad_record_is_one_error_naming_file_row_and_field(mini, tmp_path, change, field):
    root = _rewrite(mini, tmp_path, "forget_5", change)
    where = re.escape(f"forget_5/train-00000-of-00001.parquet: row 0 (ID '1'): field '{field}'")
    with pytest.raises(DataError, match=where):
        read(root, "forget_5")


def test_a_file_that_is_not_parquet_and_a_missing_split_are_named(tmp_path):
    (tmp_path / "forget_5").mkdir()
    (tmp_path / "forget_5" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="not a readable parquet file"):
        read(tmp_path, "forget_5")
    with pytest.raises(DataError, match="no parquet file"):
        read(tmp_path, "retain_95")
    with pytest.raises(DataError, match="unknown MLLMU-Bench split 'forget_7'"):
        read(tmp_path, "forget_7")


def test_the_tasks_scores_on_hand_cases():
    assert [chosen_letter(a) for a in ("B", " c) Porto", "Z", "a")] == ["B", "C", None, "A"]
    assert classification_accuracy(["B", " c) Porto", "Z", "a"], ["B", "C", "A", "A"]) == 75.0
    assert cloze_accuracy(["He works as a Luthier.", "no idea"], ["luthier", "Porto"]) == 50.0
    # "the cat sat" vs "the cat ran": 2 of 3 unigrams, 1 of 2 bigrams, a common subsequence of 2
    scores = generation_rouge(["the cat sat"], ["the cat ran"])
    assert scores == pytest.approx({"rouge1": 2 / 3, "rouge2": 1 / 2, "rougeL": 2 / 3})
    with pytest.raises(ValueError):
        cloze_accuracy(["a"], ["a", "b"])


def test_safeeraser_is_on_the_seam_too(mini_dir):
    se = benchmark_for("safeeraser")
    records = se.read(mini_dir, "all_train")
    assert records and all(r.unsafe_pairs for r in records)
    with pytest.raises(KeyError, match="unknown benchmark 'tofu'"):
        benchmark_for("tofu")


@pytest.mark.parametrize("name", ["mllmu", "fiubench", "clear"])
def test_make_mini_writes_any_registered_benchmarks_mini(tmp_path, capsys, name):
    from safeeraser.cli import main

    assert main(["make-mini", "--benchmark", name, "--out", str(tmp_path / name)]) == 0
    bench = benchmark_for(name)
    printed = capsys.readouterr().out
    for split in bench.splits:
        assert f"{split}: {len(bench.read(tmp_path / name, split))} records" in printed
