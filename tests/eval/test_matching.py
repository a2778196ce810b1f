"""Input and dataset files are paired by position and checked; problems name the file, record and field."""

from __future__ import annotations

import pytest

from safeeraser.eval import evaluate
from safeeraser.eval.matching import load_matched
from safeeraser.io import DataError


def test_matched_records_carry_their_category(sample_files):
    matched = load_matched(*sample_files)
    assert [m.category for m in matched] == ["Violence", "Privacy", None]
    assert matched[1].dataset["UnharmPair_text1"]["Prediction"] == "yes"


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda a, d: d[1]["unsafe_pairs"][0].update(question="Another question?"), "unsafe_pairs[0].question"),
        (lambda a, d: d[1].update(image_path="dataset/images/Sex/0099.png"), "image_path"),
        (lambda a, d: d[1]["UnharmPair_image2"].update(Question="Other?"), "UnharmPair_image2.Question"),
        (lambda a, d: a[1]["unsafe_pairs"].append(dict(a[1]["unsafe_pairs"][0])), "unsafe_pairs (count)"),
    ],
)
def test_a_mismatch_names_the_record_and_field(write_sample, tmp_path, edit, field):
    input_file, refer_file = write_sample(edit)
    with pytest.raises(DataError) as err:
        evaluate(input_file, refer_file, tmp_path / "out.json", judge="keyword", show_progress=False)
    message = str(err.value)
    assert message.startswith(f"{input_file}: record 1: field '{field}'")
    assert str(refer_file) in message


def test_different_record_counts_are_an_error(write_sample):
    input_file, refer_file = write_sample(lambda a, d: d.pop())
    with pytest.raises(DataError, match="3 records, but .* has 2"):
        load_matched(input_file, refer_file)


def test_a_missing_answer_field_names_the_record_and_field(write_sample):
    input_file, refer_file = write_sample(lambda a, d: a[2]["unsafe_pairs"][0].pop("model_response2"))
    with pytest.raises(DataError, match=r"record 2: field 'unsafe_pairs\[0\]\.model_response2': missing"):
        load_matched(input_file, refer_file)


def test_dataset_records_are_not_accepted_as_answers(write_sample):
    """Feeding the dataset itself (model_response, no model_response1..3) is a clear error."""
    _, refer_file = write_sample()
    with pytest.raises(DataError, match="model_response1"):
        load_matched(refer_file, refer_file)
