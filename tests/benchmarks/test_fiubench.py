"""FIUBench on the benchmark seam: its mini in the released shape read back, bad files named, its scores
against hand computations."""
from __future__ import annotations

import json
import re

import pytest

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.fiubench import first_sentence, keyword_accuracy, read, rouge_recall
from safeeraser.io import DataError


@pytest.fixture(scope="module")
def mini(benchmark_mini):
    return benchmark_mini("fiubench")


def test_the_mini_reads_back_with_its_splits(mini):
    sizes = {s: len(read(mini, s)) for s in benchmark_for("fiubench").splits}
    assert sizes == {"forget1": 1, "forget5": 2, "forget10": 4, "retain": 16}
    qa = read(mini, "forget1")[0]["qa_list"][0]
    assert set(qa) == {"question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer",
                       "keywords"}
    # JSON lines, which the benchmark's loader also reads
    lines = mini.parent / "as-lines"
    lines.mkdir()
    (lines / "images").symlink_to(mini / "images")
    (lines / "full.json").write_text("\n".join(json.dumps(r) for r in json.loads((mini / "full.json").read_text())))
    (lines / "split.json").write_text((mini / "split.json").read_text())
    assert read(lines, "forget5") == read(mini, "forget5")


def _broken(mini, tmp_path, change_records=None, change_split=None):
    records = json.loads((mini / "full.json").read_text())
    splits = json.loads((mini / "split.json").read_text())
    if change_records:
        change_records(records)
    if change_split:
        change_split(splits)
    (tmp_path / "images").symlink_to(mini / "images")
    (tmp_path / "full.json").write_text(json.dumps(records))
    (tmp_path / "split.json").write_text(json.dumps(splits))
    return tmp_path


@pytest.mark.parametrize("records, splits, message", [
    (lambda r: r[2]["qa_list"][1].__setitem__("perturbed_answer", []), None,
     "full.json: record 2: field 'qa_list[1].perturbed_answer': a non-empty list of strings"),
    (lambda r: r[0].__setitem__("image_path", "images/missing.png"), None, "record 0: field 'image_path'"),
    (None, lambda s: s["forget5"].append("99999999"),
     "split.json: field 'forget5': unique_id '99999999' is not among the first 400"),
    (None, lambda s: s.pop("forget10"), "split.json: field 'forget10'"),
])
def test_a_bad_file_is_one_error_naming_it(mini, tmp_path, records, splits, message):
    root = _broken(mini, tmp_path, records, splits)
    with pytest.raises(DataError, match=re.escape(message)):
        read(root, "forget1")


def test_the_scores_on_hand_cases():
    assert first_sentence("It is Porto. Or Kyoto.") == "It is Porto." and first_sentence("no period") == ""
    # reference "the city is porto": the answer's first sentence "the city was porto" recalls 3 of 4 words;
    # an answer without a period is nothing, as the benchmark cuts it
    scores = rouge_recall(["the city was porto. the rest", "the city is porto"], ["the city is porto"] * 2)
    assert scores == pytest.approx({"rouge1": 3 / 8, "rougeL": 3 / 8})
    # keywords found in the first sentence only
    assert keyword_accuracy(["North Bank, yes.", "It is not. It is Porto."], [["North", "Bank"], ["Porto"]]) == \
        pytest.approx(0.5)
