"""UMU-Bench on the benchmark seam: its mini written in the released layout (Python-literal columns) and
read back, bad files named, its paired-modality scores against hand computations."""
from __future__ import annotations

import ast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.umu import (COLUMNS, classification_scores, cloze_scores, eval_items, generation_scores,
                                       read)
from safeeraser.io import DataError


@pytest.fixture(scope="module")
def mini(benchmark_mini):
    return benchmark_mini("umu")


def test_the_mini_is_in_the_released_layout_and_reads_back(mini):
    table = pq.read_table(mini / "forget_10" / "train-00000-of-00001.parquet")
    # one row per person, the forget configs the first people, the retain configs the rest
    assert {s: len(read(mini, s)) for s in benchmark_for("umu").splits} == {
        "forget_5": 1, "forget_10": 2, "forget_15": 3, "retain_95": 19, "retain_90": 18, "retain_85": 17,
        "real_person": 4}
    assert table.schema.names == list(COLUMNS)
    assert table.schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    raw = table.to_pylist()[0]
    assert isinstance(raw["Classify"], str)  # as released: a Python literal in a string column
    assert set(ast.literal_eval(raw["Classify"])) == {"unimodal", "muitimodal"}
    row = read(mini, "forget_10")[0]
    assert set(row["MM_QA"]["question"]) == set(row["MM_QA"]["answer"])
    assert {r["ID"] for r in read(mini, "forget_10")}.isdisjoint(r["ID"] for r in read(mini, "retain_90"))


def test_the_real_people_are_read_under_either_released_name(mini, tmp_path):
    import shutil

    shutil.copytree(mini / "real_person", tmp_path / "Real_Person_Set")
    assert len(read(tmp_path, "real_person")) == 4


def _rewrite(mini, tmp_path, change) -> str:
    rows = pq.read_table(mini / "forget_5" / "train-00000-of-00001.parquet").to_pylist()
    change(rows[0])
    (tmp_path / "forget_5").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "forget_5" / "train-00000-of-00001.parquet")
    return str(tmp_path)


def _classify(row, **item):
    value = ast.literal_eval(row["Classify"])
    value["unimodal"]["0"].update(item)
    row["Classify"] = repr(value)


@pytest.mark.parametrize("change, field", [
    (lambda r: r.update(MM_QA="{'question': {'0': 'q'"), "MM_QA"),  # not a literal
    (lambda r: r.update(UM_QA="['a list']"), "UM_QA"),
    (lambda r: r.update(MM_QA=repr({"question": {"0": "q"}, "answer": {"1": "a"}})), "MM_QA.answer"),
    (lambda r: _classify(r, answer="E."), "Classify.unimodal['0'].answer"),
    (lambda r: _classify(r, options={"A": "x", "B": "y"}), "Classify.unimodal['0'].options"),
    (lambda r: r.update(Cloze=repr({"unimodal": {"0": {"question": "q", "answer": "a"}}, "muitimodal": {}})),
     "Cloze.muitimodal"),
    (lambda r: r.update(image={"bytes": b"no image", "path": "x.png"}), "image"),
    (lambda r: r.update(Generation=None), "Generation"),
])
def test_a_bad_record_is_one_error_naming_file_row_and_field(mini, tmp_path, change, field):
    root = _rewrite(mini, tmp_path, change)
    with pytest.raises(DataError, match=r"forget_5/train-00000-of-00001\.parquet: row 0 \(ID 1\): field "
                                         + f"'{__import__('re').escape(field)}'"):
        read(root, "forget_5")


def test_the_eval_items_come_in_modality_pairs(mini):
    items = eval_items(mini, "forget_10")
    row = read(mini, "forget_10")[0]
    (mm_image, mm_prompt, mm_ref, mm_unit), (um_image, um_prompt, um_ref, um_unit) = items["classification"][:2]
    assert mm_unit == um_unit == f"person {row['ID']}"  # a pair is resampled as one
    assert mm_image != um_image  # the person's image, then the blank one
    mm_item = row["Classify"]["muitimodal"]["0"]
    assert mm_prompt.startswith(mm_item["question"]) and mm_ref["gold"] == mm_item["options"][mm_item["answer"][0]]
    assert um_prompt.startswith(row["Classify"]["unimodal"]["0"]["question"])
    assert len(items["cloze"]) == len(items["generation"]) == 2 * 2  # two people, one item each, two modalities


def test_a_pairs_gold_option_is_at_the_unimodal_items_letter(mini, tmp_path):
    """As its eval.py reads the gold answer: the unimodal item's letter, on each question's own options."""
    def change(row):
        value = ast.literal_eval(row["Classify"])
        uni, mm = value["unimodal"]["0"], value["muitimodal"]["0"]
        mm["answer"] = next(k for k in "ABCD" if k != uni["answer"][0]) + "."  # a letter of its own
        mm["options"] = dict(zip("ABCD", reversed([uni["options"][k] for k in "ABCD"])))  # another order
        row["Classify"] = repr(value)

    root = _rewrite(mini, tmp_path, change)
    uni, mm = (read(root, "forget_5")[0]["Classify"][m]["0"] for m in ("unimodal", "muitimodal"))
    (_, _, mm_ref, _), (_, _, um_ref, _) = eval_items(root, "forget_5")["classification"][:2]
    assert um_ref["gold"] == uni["options"][uni["answer"][0]]
    assert mm_ref["gold"] == mm["options"][uni["answer"][0]] != mm["options"][mm["answer"][0]]


def test_paired_accuracies_against_hand_counts():
    refs = [{"gold": "potter", "options": ["potter", "tailor", "welder", "organist"], "closest": False}] * 6
    # three items (multimodal, unimodal): right/right, right/wrong, wrong/wrong
    answers = ["potter", " potter ", "potter", "tailor", "Potter", "welder"]
    assert classification_scores(answers, refs) == {"multimodal": pytest.approx(200 / 3), "unimodal": pytest.approx(100 / 3),
                                                    "both_right": pytest.approx(100 / 3),
                                                    "both_wrong": pytest.approx(100 / 3)}
    closest = [{**r, "closest": True} for r in refs]  # real_person: the nearest option ("Potter" -> potter)
    assert classification_scores(answers, closest)["multimodal"] == 100.0
    cloze = cloze_scores(["In Lisbon, yes", "lisbon", "Oslo", "no idea"], ["Lisbon.", "Lisbon.", "Ghent.", "Ghent."])
    assert cloze == {"multimodal": 50.0, "unimodal": 50.0, "both_right": 50.0, "both_wrong": 50.0}
    with pytest.raises(ValueError, match="pairs"):
        cloze_scores(["a", "b", "c"], ["a", "b", "c"])


def test_generation_means_of_the_two_modalities_against_hand_rouge():
    # item 1: multimodal exact (F 1), unimodal no word shared (F 0); item 2: both share 2 of 3 words (F 2/3)
    answers = ["red fox runs", "blue cat", "red fox sat", "red fox sat"]
    refs = ["red fox runs", "green dog", "red fox runs", "red fox runs"]
    scores = generation_scores(answers, refs)
    assert scores["multimodal.rougeL"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["unimodal.rougeL"] == pytest.approx((0 + 2 / 3) / 2)
    # contraharmonic (a^2 + b^2)/(a + b): item 1 -> 1, item 2 -> 2/3; harmonic 2ab/(a + b): 0 and 2/3
    assert scores["rougeL.contraharmonic"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["rougeL.harmonic"] == pytest.approx((0 + 2 / 3) / 2)
    # a pair whose two scores differ and are both above 0 tells the per-item means from the modalities' means:
    # multimodal F 1, unimodal F 2/3 ("red fox" of "red fox runs", one word wrong)
    one = generation_scores(["red fox runs", "red fox sat"], ["red fox runs", "red fox runs"])
    a, b = 1.0, 2 / 3
    assert one["rougeL.contraharmonic"] == pytest.approx((a * a + b * b) / (a + b))  # 13/15, not a or b
    assert one["rougeL.harmonic"] == pytest.approx(2 * a * b / (a + b))  # 4/5
