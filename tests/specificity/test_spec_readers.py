"""Reading the benchmarks' files: LLaVA-1.5's question files, the official annotation files, and the
errors that say which file or field is missing and where it was expected."""
import base64
import csv
import json
import shutil

import pytest

from safeeraser.io import DataError
from safeeraser.specificity.base import SHORT_ANSWER
from safeeraser.specificity.registry import get_benchmark, parse_benchmark_names


def load(name, root, tmp_path):
    bench = get_benchmark(name)
    return bench.load(bench.find_folder(root), workdir=tmp_path / "work" / name)


def with_llava_file(root, name, file_name):
    shutil.copy(root / "llava" / file_name, root / name / file_name)


def test_llava_gqa_file_sets_questions_and_answers_come_from_official(fixture_copy, tmp_path):
    with_llava_file(fixture_copy, "gqa", "llava_gqa_testdev_balanced.jsonl")
    questions = load("gqa", fixture_copy, tmp_path)
    assert [q.question_id for q in questions] == ["203", "201"]  # the LLaVA file's order and subset
    assert questions[0].prompt == f"What shape is shown?\n{SHORT_ANSWER}"  # the instruction not doubled
    assert [q.reference["gold"] for q in questions] == ["circle", "red"]
    assert questions[0].image == fixture_copy / "gqa" / "images" / "n2.jpg"


def test_llava_files_of_other_benchmarks_match_official_references(fixture_copy, tmp_path):
    for name, file_name in [("vqav2", "llava_vqav2_mscoco_val2014.jsonl"), ("vizwiz", "llava_val.jsonl"),
                            ("sqa", "llava_test_CQM-A.json"), ("pope", "llava_pope_test.jsonl"),
                            ("mmvet", "llava-mm-vet.jsonl")]:
        with_llava_file(fixture_copy, name, file_name)
    vqav2 = load("vqav2", fixture_copy, tmp_path)
    assert [q.question_id for q in vqav2] == ["1002"]
    assert vqav2[0].reference["human_answers"].count("computer") == 8
    vizwiz = load("vizwiz", fixture_copy, tmp_path)  # matched by image
    assert vizwiz[0].question_id == "0" and vizwiz[0].reference["human_answers"].count("three") == 3
    assert vizwiz[0].prompt.count("Unanswerable") == 1
    sqa = load("sqa", fixture_copy, tmp_path)  # the text-only problem 3 is left out
    assert [q.question_id for q in sqa] == ["2"]
    assert sqa[0].prompt.startswith("Context: The picture shows one shape.\nWhich shape is shown?\nA. circle")
    assert "<image>" not in sqa[0].prompt and sqa[0].reference["gold"] == "A"
    pope = load("pope", fixture_copy, tmp_path)  # matched by split, image and question
    assert [(q.question_id, q.reference["split"], q.reference["label"]) for q in pope] == [
        ("10", "adversarial", "yes"), ("11", "random", "no")]
    mmvet = load("mmvet", fixture_copy, tmp_path)  # LLaVA's 1 is the official v1_1
    assert mmvet[0].question_id == "1" and mmvet[0].reference["ground_truth"] == "3 <OR> three"
    assert mmvet[0].prompt == "How many dots are in the image?"  # MM-Vet: no format instruction


def test_llava_question_without_annotation_is_named(fixture_copy, tmp_path):
    path = fixture_copy / "gqa" / "llava_gqa_testdev_balanced.jsonl"
    path.write_text(json.dumps({"question_id": "999", "image": "n1.jpg", "text": "Why?"}) + "\n")
    with pytest.raises(DataError, match=r"question 999 of .*llava_gqa_testdev_balanced.jsonl has no answer"):
        load("gqa", fixture_copy, tmp_path)


def test_llava_question_file_missing_field_is_named(fixture_copy, tmp_path):
    no_text = {"question_id": 1, "image": "x.jpg"}
    (fixture_copy / "pope" / "llava_pope_test.jsonl").write_text(json.dumps(no_text) + "\n")
    with pytest.raises(DataError, match=r"llava_pope_test.jsonl: line 1: missing field 'text'"):
        load("pope", fixture_copy, tmp_path)


@pytest.mark.parametrize("name, removed, expected", [
    ("gqa", "gqa/testdev_balanced_questions.json",
     r"testdev-balanced.*expected at .*gqa/testdev_balanced_questions.json"),
    ("vqav2", "vqav2/v2_mscoco_val2014_annotations.json",
     r"VQAv2 val annotations not found; expected at .*annotations.json"),
    ("vqav2", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", r"VQAv2 val questions not found"),
    ("vizwiz", "vizwiz/val.json", r"expected at .*vizwiz/val.json, .*vizwiz/Annotations/val.json"),
    ("sqa", "sqa/problems.json", r"problems.json not found"),
    ("mmvet", "mmvet/mm-vet.json", r"mm-vet.json not found"),
    ("mmbench", "mmbench/mmbench_dev_20230712.tsv", r"expected one MMBench dev TSV in .*mmbench, found none"),
    ("gqa", "gqa/images", r"image folder not found; expected at .*gqa/images, .*gqa/data/images"),
])
def test_missing_file_says_what_and_where(fixture_copy, tmp_path, name, removed, expected):
    target = fixture_copy / removed
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DataError, match=expected):
        load(name, fixture_copy, tmp_path)


def test_missing_benchmark_folder_and_pope_splits(fixture_copy, tmp_path):
    shutil.rmtree(fixture_copy / "sqa")
    with pytest.raises(DataError, match=r"no ScienceQA-IMG folder under .*looked for .*sqa, .*scienceqa"):
        load("sqa", fixture_copy, tmp_path)
    shutil.rmtree(fixture_copy / "pope" / "coco")
    with pytest.raises(DataError, match=r"no POPE split file found; expected at least one of .*coco_pope_adversarial"):
        load("pope", fixture_copy, tmp_path)


def test_missing_field_and_image_are_named(fixture_copy, tmp_path):
    path = fixture_copy / "gqa" / "testdev_balanced_questions.json"
    data = json.loads(path.read_text())
    del data["203"]["answer"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"testdev_balanced_questions.json: 203: missing field 'answer'"):
        load("gqa", fixture_copy, tmp_path)
    (fixture_copy / "vqav2" / "val2014" / "COCO_val2014_000000000002.jpg").unlink()
    with pytest.raises(DataError, match=r"2 of 4 images not found, e.g. .*_000000000002.jpg \(question 1003\)"):
        load("vqav2", fixture_copy, tmp_path)


def test_pope_label_must_be_yes_or_no(fixture_copy, tmp_path):
    path = fixture_copy / "pope" / "coco" / "coco_pope_random.json"
    path.write_text(path.read_text().replace('"label": "no"', '"label": "maybe"', 1))
    with pytest.raises(DataError, match=r"coco_pope_random.json: line 2: label must be yes or no"):
        load("pope", fixture_copy, tmp_path)


def test_sqa_split_from_problems_when_pid_splits_absent(fixture_copy, tmp_path):
    (fixture_copy / "sqa" / "pid_splits.json").unlink()
    assert [q.question_id for q in load("sqa", fixture_copy, tmp_path)] == ["1", "2", "5"]


def read_tsv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh, delimiter="\t"))


def write_tsv_rows(path, rows):
    with open(path, "w", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)


def test_mmbench_images_unpacked_and_missing_column_named(fixture_copy, tmp_path):
    questions = load("mmbench", fixture_copy, tmp_path)
    image = questions[0].image
    assert image.suffix == ".png" and image.read_bytes().startswith(b"\x89PNG")
    tsv = fixture_copy / "mmbench" / "mmbench_dev_20230712.tsv"
    rows = read_tsv_rows(tsv)
    assert image.read_bytes() == base64.b64decode(rows[1][rows[0].index("image")])
    write_tsv_rows(tsv, [[c for i, c in enumerate(r) if rows[0][i] != "answer"] for r in rows])
    with pytest.raises(DataError, match=r"missing column\(s\) answer"):
        load("mmbench", fixture_copy, tmp_path)


def test_mmbench_tsv_with_rotations_is_used_as_it_is(fixture_copy, tmp_path):
    tsv = fixture_copy / "mmbench" / "mmbench_dev_20230712.tsv"
    rows = read_tsv_rows(tsv)
    header, first = rows[0], rows[1]
    col = {c: i for i, c in enumerate(header)}
    rotated = list(first)
    rotated[col["index"]] = "1000000"
    rotated[col["A"]], rotated[col["B"]], rotated[col["C"]], rotated[col["D"]] = "blue", "green", "yellow", "red"
    rotated[col["answer"]] = "D"
    rotated[col["image"]] = "0"  # VLMEvalKit points repeated images at the first row
    write_tsv_rows(tsv, [header, first, rotated])
    questions = load("mmbench", fixture_copy, tmp_path)
    assert [q.question_id for q in questions] == ["0", "1000000"]  # no further rotation
    assert {q.reference["rounds"] for q in questions} == {2}
    assert questions[1].reference["gold"] == "D"
    assert questions[1].image.read_bytes() == questions[0].image.read_bytes()


def test_benchmark_names():
    assert parse_benchmark_names("gqa, POPE,gqa") == ["gqa", "pope"]
    with pytest.raises(DataError, match="unknown benchmark 'textvqa'"):
        parse_benchmark_names("gqa,textvqa")
