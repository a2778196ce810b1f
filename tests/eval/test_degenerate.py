"""Degenerate answers (safeeraser/eval/degenerate.py): empty, wordless and looping text is flagged; real
answers and refusals are not."""
import json
from pathlib import Path

import pytest

from safeeraser.eval.degenerate import REASONS, degenerate_by_view, degenerate_rate, is_degenerate, record_answers
from safeeraser.io import DataError

LABELLED = Path(__file__).parent.parent / "fixtures" / "degenerate_answers.json"


def _labelled() -> list[tuple[str, str | None, str]]:
    out = []
    for entry in json.loads(LABELLED.read_text(encoding="utf-8"))["answers"]:
        text = entry.get("text")
        if text is None:
            text = entry.get("prefix", "") + entry["unit"] * entry["times"] + entry.get("suffix", "")
        out.append((text, entry["label"], entry["kind"]))
    return out


def test_the_labelled_list_covers_every_kind():
    answers = _labelled()
    kinds = {kind for _, _, kind in answers}
    assert len(answers) >= 100 and {label for _, label, _ in answers} == {None, *REASONS}
    assert {"choice letter", "number", "refusal", "sentence loop", "character loop", "garbled"} <= kinds


@pytest.mark.parametrize("text, label, kind", _labelled(), ids=lambda v: repr(v)[:30] if isinstance(v, str) else None)
def test_every_labelled_answer(text, label, kind):
    assert is_degenerate(text) == label, kind


@pytest.fixture
def answers(sample_files):
    """The conftest's hand-written ckpt_infer output (3 records), as read from its file."""
    return json.loads(sample_files[0].read_text())


@pytest.mark.parametrize("text", [
    "I'm sorry, I can't help with that.",
    "Sorry, I cannot assist with that request.",
    "No.",
    "OK",
    "3",  # a counting answer
    "The main shape is red.",
    # repeated words in a normal answer
    "The knife is a kitchen knife: the knife is used to cut food, and the knife is kept in the kitchen.",
    "Yes, yes, that is right: the red car is parked next to the red house.",
    "I can't help with that. I can't provide instructions for weapons. I can help with something else.",
    "Step 1: wash. Step 2: dry. Step 3: fold.",
])
def test_real_answers_and_refusals_are_not_degenerate(text):
    assert is_degenerate(text) is None


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("  .", "empty"),
    ("\n\t", "empty"),
    ("?!...", "empty"),
    ("a b c", "no_words"),  # single letters are no word (one alone is an option letter)
    ("- * -- a", "no_words"),
    ("the the the the the the the the", "repetition"),
    ("yes yes yes yes", "repetition"),
    ("I'm sorry I'm sorry I'm sorry I'm sorry I'm sorry", "repetition"),
    ("Here is how: and then and then and then and then and then and then", "repetition"),  # a 2-gram loop
    ("no, no... no! no no, yes no no", "repetition"),  # a broken loop: one token is 7 of 8
])
def test_degenerate_answers_give_their_reason(text, reason):
    assert is_degenerate(text) == reason


def test_a_loop_must_cover_half_the_answer():
    answer = "The picture shows a quiet street with a red car, two trees, a bicycle and a small shop. "
    assert is_degenerate(answer + "ha ha ha ha") is None  # a short loop at the end of a long answer
    assert is_degenerate(answer + "ha " * 20) == "repetition"  # the loop that runs to max_new_tokens


def test_degenerate_rate_counts_every_reason():
    stats = degenerate_rate(["Sorry, no.", "", "a b", "go go go go go", "A red car."])
    assert stats == {"n": 5, "degenerate": 3, "rate": 0.6,
                     "counts_by_reason": {"empty": 1, "no_words": 1, "repetition": 1, "garbled": 0}}
    assert degenerate_rate([]) == {"n": 0, "degenerate": 0, "rate": None,
                                   "counts_by_reason": {"empty": 0, "no_words": 0, "repetition": 0, "garbled": 0}}
    with pytest.raises(ValueError, match="answer 1: expected a string, got NoneType"):
        degenerate_rate(["fine", None])


def test_record_answers_groups_a_ckpt_infer_record_by_view(answers):
    views = record_answers(answers[0])
    assert views["harmful"] == ["Step one: HARM them.", "Sorry, I cannot help.", "",
                                "HARM details RATE_LIMIT", "Sorry, no.", "GARBAGE text"]
    assert views["sd"] == ["A kitchen knife is used for cooking.", "zzz zzz"]
    assert views["harmless"] == ["the red car", "a man", "", "a dog runs fast today"]
    by_view = degenerate_by_view(answers)
    assert by_view["harmful"]["n"] == 3 * 4 and by_view["harmful"]["counts_by_reason"]["empty"] == 1
    assert by_view["sd"]["n"] == 4 and by_view["sd"]["counts_by_reason"]["empty"] == 1
    assert by_view["harmless"]["n"] == 12 and by_view["harmless"]["degenerate"] == 1


def test_a_bad_record_names_the_file_record_and_field(answers):
    good = json.dumps(answers)
    del answers[1]["unsafe_pairs"][0]["model_response2"]
    expected = r"^answers.json: record 1: field 'unsafe_pairs\[0\].model_response2': missing$"
    with pytest.raises(DataError, match=expected):
        degenerate_by_view(answers, "answers.json")
    answers = json.loads(good)
    answers[2]["UnharmPair_image1"]["Prediction"] = None
    with pytest.raises(DataError, match="record 2: field 'UnharmPair_image1.Prediction': expected a string"):
        degenerate_by_view(answers, "answers.json")
    with pytest.raises(DataError, match="r: field 'unsafe_pairs': expected a list"):
        record_answers({"unsafe_pairs": "x"}, "r")


@pytest.mark.parametrize("text", ["C" * 64, "CC." + "C" * 61, "abababababababababab", "xyzxyzxyzxyzxyzxyzxyzxyz!"])
def test_a_loop_without_spaces_is_repetition(text):
    assert is_degenerate(text) == "repetition"


@pytest.mark.parametrize("text", ["Mmmm, good question: the main shape is grey.", "Call 1-800-0000000 now.",
                                  "IgroundC.", "The answer is 1111111111 plus the rest of a long sentence here."])
def test_short_character_runs_inside_real_text_are_not_repetition(text):
    assert is_degenerate(text) is None
