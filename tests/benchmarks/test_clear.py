"""CLEAR on the benchmark seam: its mini in the released parquet layout read back, bad records named, its
ROUGE against a hand computation."""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.clear import read, rouge_recall
from safeeraser.io import DataError


@pytest.fixture(scope="module")
def mini(benchmark_mini):
    return benchmark_mini("clear")


def test_the_mini_reads_back_in_the_released_layout(mini):
    sizes = {s: len(read(mini, s)) for s in benchmark_for("clear").splits}
    assert sizes == {"forget01": 2, "forget05": 2, "forget10": 2, "retain99": 18, "retain95": 18, "retain90": 18,
                     "forget01_perturbed": 2, "forget05_perturbed": 2, "forget10_perturbed": 2,
                     "retain_perturbed": 18, "real_faces": 4, "real_world": 1}
    assert pq.read_schema(mini / "forget05" / "train-00000-of-00001.parquet").names == ["image", "caption", "name"]
    assert pq.read_schema(mini / "forget05_perturbed" / "train-00000-of-00001.parquet").names == [
        "image", "caption", "name", "perturbed_captions", "paraphrased_caption", "perturbed_names"]
    row = read(mini, "forget10_perturbed")[0]
    assert row["name"] not in row["perturbed_names"] and row["caption"] not in row["perturbed_captions"]
    assert all(r["answer"] in r["options"] for r in read(mini, "real_faces"))


@pytest.mark.parametrize("change, message", [
    (lambda r: r.__setitem__("perturbed_names", []), "field 'perturbed_names': a non-empty list of strings"),
    (lambda r: r.__setitem__("image", {"bytes": b"nope", "path": "x"}), "field 'image': the bytes are not an image"),
])
def test_a_bad_record_is_named(mini, tmp_path, change, message):
    rows = pq.read_table(mini / "forget05_perturbed" / "train-00000-of-00001.parquet").to_pylist()
    change(rows[1])
    (tmp_path / "forget05_perturbed").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "forget05_perturbed" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=re.escape(f"train-00000-of-00001.parquet: row 1: {message}")):
        read(tmp_path, "forget05_perturbed")


def test_rouge_recall_on_the_whole_generation():
    # all 4 of the reference's words, stemmed (books ~ book), though past the first period (FIUBench cuts there)
    assert rouge_recall(["Mira is. reading a book"], ["mira is reading books"]) == pytest.approx(
        {"rouge1": 1.0, "rougeL": 1.0})
    assert rouge_recall(["the city was porto"], ["the city is porto"]) == pytest.approx({"rouge1": 0.75, "rougeL": 0.75})


def test_its_eval_and_truth_ratio_items_and_scores(mini, tiny_dir, tmp_path):
    import json

    from safeeraser.cli import main

    bench = benchmark_for("clear")
    assert bench.forgets("forget10_perturbed") and bench.forgets("forget05") and not bench.forgets("retain_perturbed")
    items = bench.likelihood_items(mini, "forget10_perturbed")
    rows = read(mini, "forget10_perturbed")
    assert len(items) == 2 * len(rows)  # a caption and a name per image
    _, _, caption, paraphrased, perturbed = items[0]
    assert (caption, paraphrased, perturbed) == (rows[0]["caption"], rows[0]["paraphrased_caption"],
                                                 rows[0]["perturbed_captions"])
    faces = bench.likelihood_items(mini, "real_faces")
    assert all(answer not in others and len(others) == 3 for _, _, answer, _, others in faces)
    assert bench.likelihood_items(mini, "forget10") == []  # no paraphrased or perturbed answers there
    out = tmp_path / "scores.json"
    assert main(["benchmark-eval", "--benchmark", "clear", "--data_path", str(mini), "--splits",
                 "forget10_perturbed,forget10,real_world", "--model_path", str(tiny_dir), "--oracle_checkpoint",
                 str(tiny_dir), "--output_file", str(out), "--max_new_tokens", "2"]) == 0
    scores = json.loads(out.read_text())["scores"]
    assert scores["forget10_perturbed"]["forget_quality"] == {"p_value": 1.0, "statistic": 0.0}
    assert set(scores["forget10"]) == {"rouge", "answers"} and "truth_ratio" in scores["real_world"]
    # the answers kept beside the scores, one per eval item, in the items' order
    assert len(scores["forget10"]["answers"]["rouge"]) == len(bench.eval_items(mini, "forget10")["rouge"])
