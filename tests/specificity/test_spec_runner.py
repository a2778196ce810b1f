"""End to end with a fake predict_fn: every fixture benchmark answered, scored and written; resume,
limit and seed; the checks on predict_fn's answers and on the output folder's owner."""
import json

import pytest

from safeeraser.io import DataError, read_json_records
from safeeraser.specificity import BENCHMARKS, builtin_data_root, run_specificity, score_predictions
from safeeraser.specificity.mmvet import MMVet

ALL = list(BENCHMARKS)


def test_end_to_end_writes_predictions_scores_and_table(fixture_root, tmp_path, fake_predict, answers):
    out = tmp_path / "out"
    summary = run_specificity(fake_predict, ALL, fixture_root, out, progress=False)
    assert json.loads((out / "specificity.json").read_text()) == summary
    for name in ALL:
        rows = read_json_records(out / name / "predictions.jsonl")
        assert {r["question_id"]: r["answer"] for r in rows} == answers[name]
        for row in rows:
            assert {"question_id", "prompt", "answer", "image"} <= set(row)
            assert set(BENCHMARKS[name].reference_fields) <= set(row)
        scores = json.loads((out / name / "scores.json").read_text())
        # The written predictions score alone to the same result: they carry what the scorer needs.
        rescored = score_predictions(name, out / name / "predictions.jsonl")
        assert rescored["score"] == scores["score"]
        assert summary["benchmarks"][name]["score"] == scores["score"]
    # Every request is one of the fixtures' questions, with its image and the benchmark's budget.
    requests = [r for call in fake_predict.calls for r in call]
    assert len(requests) == sum(len(a) for a in answers.values())
    assert all(r.image.is_file() for r in requests)
    assert {r.max_new_tokens for r in requests if "mmvet" in r.image.parts} == {MMVet.max_new_tokens}
    assert {r.max_new_tokens for r in requests if "gqa" in r.image.parts} == {128}


def test_average_leaves_out_mmvet_and_says_so(fixture_root, tmp_path, fake_predict):
    summary = run_specificity(fake_predict, ALL, fixture_root, tmp_path / "out", progress=False)
    table = summary["benchmarks"]
    assert table["mmvet"]["score"] is None and "could not grade" in table["mmvet"]["unavailable"]
    scored = [n for n in ALL if n != "mmvet"]
    assert summary["averaged_over"] == scored
    assert summary["average"] == pytest.approx(sum(table[n]["score"] for n in scored) / len(scored))
    assert "6 of 7" in summary["note"] and "mmvet" in summary["note"]


def test_grader_is_passed_to_mmvet(fixture_root, tmp_path, fake_predict):
    class AllRight:
        def grade(self, items):
            return [1.0] * len(items)

    summary = run_specificity(fake_predict, ["gqa", "mmvet"], fixture_root, tmp_path / "out", grader=AllRight(),
                              progress=False)
    assert summary["benchmarks"]["mmvet"]["score"] == 100.0
    assert summary["averaged_over"] == ["gqa", "mmvet"]


def test_resume_asks_only_what_is_missing(fixture_root, tmp_path, fake_predict):
    out = tmp_path / "out"
    first = run_specificity(fake_predict, ["gqa", "pope"], fixture_root, out, progress=False)
    asked_first = len(fake_predict.asked)
    again = run_specificity(fake_predict, ["gqa", "pope"], fixture_root, out, progress=False)
    assert len(fake_predict.asked) == asked_first  # nothing regenerated
    assert again == first
    # A run killed mid-write: two rows gone and a torn last line.
    path = out / "pope" / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]) + lines[-3][:20])
    run_specificity(fake_predict, ["gqa", "pope"], fixture_root, out, progress=False)
    assert sorted(fake_predict.asked[asked_first:]) == sorted(json.loads(line)["question_id"] for line in lines[-3:])
    rows = read_json_records(path)
    assert len(rows) == len({r["question_id"] for r in rows}) == 8


def test_changed_prompt_or_budget_is_asked_again(fixture_copy, tmp_path, fake_predict):
    out = tmp_path / "out"
    run_specificity(fake_predict, ["gqa"], fixture_copy, out, progress=False)
    path = fixture_copy / "gqa" / "testdev_balanced_questions.json"
    data = json.loads(path.read_text())
    data["202"]["question"] = "Is the square on the right?"
    path.write_text(json.dumps(data))
    before = len(fake_predict.asked)
    run_specificity(fake_predict, ["gqa"], fixture_copy, out, progress=False)
    assert fake_predict.asked[before:] == ["202"]
    before = len(fake_predict.asked)
    run_specificity(fake_predict, ["gqa"], fixture_copy, out, max_new_tokens=5, progress=False)
    assert sorted(fake_predict.asked[before:]) == ["201", "202", "203", "204"]  # another budget, other answers


def test_limit_and_seed_choose_whole_questions(fixture_root, tmp_path, fake_predict):
    def run(seed, out):
        run_specificity(fake_predict, ["pope", "mmbench"], fixture_root, out, limit=2, seed=seed, progress=False)
        return {name: json.loads((out / name / "scores.json").read_text()) for name in ("pope", "mmbench")}

    a = run(0, tmp_path / "a")
    assert run(0, tmp_path / "b") == a  # same seed, same questions
    assert a["pope"]["n"] == 2 and a["pope"]["limit"] == 2
    # MMBench draws questions with all their rotations, so circular scoring still applies.
    by_group = {}
    for row in read_json_records(tmp_path / "a" / "mmbench" / "predictions.jsonl"):
        by_group.setdefault(row["group"], []).append(row)
    assert len(by_group) == a["mmbench"]["n"] == 2
    assert all(len(members) == members[0]["rounds"] for members in by_group.values())
    draws = set()
    for seed in range(6):
        out = tmp_path / f"seed{seed}"
        run_specificity(fake_predict, ["pope"], fixture_root, out, limit=2, seed=seed, progress=False)
        draws.add(tuple(sorted(r["question_id"] for r in read_json_records(out / "pope" / "predictions.jsonl"))))
    assert len(draws) > 1  # the seed does change the draw


def test_predict_fn_is_called_in_chunks(fixture_root, tmp_path, fake_predict):
    run_specificity(fake_predict, ["pope"], fixture_root, tmp_path / "out", chunk_size=3, progress=False)
    assert [len(call) for call in fake_predict.calls] == [3, 3, 2]


def test_max_new_tokens_override(fixture_root, tmp_path, fake_predict):
    run_specificity(fake_predict, ["mmvet", "gqa"], fixture_root, tmp_path / "out", max_new_tokens=7, progress=False)
    assert {r.max_new_tokens for call in fake_predict.calls for r in call} == {7}


def test_wrong_number_of_answers_is_an_error(fixture_root, tmp_path):
    with pytest.raises(TypeError, match="one string per request"):
        run_specificity(lambda requests: ["yes"], ["gqa"], fixture_root, tmp_path / "out", progress=False)


def test_data_is_checked_before_any_question_is_asked(fixture_copy, tmp_path, fake_predict):
    (fixture_copy / "mmvet" / "mm-vet.json").unlink()
    with pytest.raises(DataError, match="mm-vet.json not found"):
        run_specificity(fake_predict, ["gqa", "mmvet"], fixture_copy, tmp_path / "out", progress=False)
    assert fake_predict.calls == []


def test_output_dir_of_another_model_is_refused(fixture_root, tmp_path, fake_predict):
    out = tmp_path / "out"
    run_specificity(fake_predict, ["gqa"], fixture_root, out, run_info={"model_path": "a"}, progress=False)
    run_specificity(fake_predict, ["gqa"], fixture_root, out, run_info={"model_path": "a"}, progress=False)
    with pytest.raises(DataError, match="another run"):
        run_specificity(fake_predict, ["gqa"], fixture_root, out, run_info={"model_path": "b"}, progress=False)


def test_builtin_fixture_set_runs_every_benchmark(tmp_path):
    asked = []

    def always_yes(requests):
        asked.extend(requests)
        return ["yes"] * len(requests)

    summary = run_specificity(always_yes, ALL, builtin_data_root(), tmp_path / "out", progress=False)
    assert set(summary["benchmarks"]) == set(ALL)
    assert {r.image.is_file() for r in asked} == {True}
    # Saying yes to everything: every POPE split has precision 1/2 and recall 1, so F1 = 2/3.
    assert summary["benchmarks"]["pope"]["score"] == pytest.approx(100 * 2 / 3)
    assert summary["average"] is not None
