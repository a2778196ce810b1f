"""Scoring predictions from elsewhere, the command line, the lmms-eval backend's command and result
parsing, and the adapter from the generation engine to predict_fn."""
import json
import os
from pathlib import Path

import pytest

from safeeraser.io import DataError
from safeeraser.specificity import lmms_eval_backend
from safeeraser.specificity.base import Request
from safeeraser.specificity.command import main
from safeeraser.specificity.engine_predict import predict_fn_from_generator
from safeeraser.specificity.score import score_predictions


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def llava_answers(answers):
    """An answer file as LLaVA's model_vqa scripts write it: the answer is in `text`."""
    return [{"question_id": qid, "prompt": "...", "text": text, "answer_id": "x", "model_id": "llava", "metadata": {}}
            for qid, text in answers.items()]


def test_llava_answer_file_scored_against_official_annotations(fixture_root, tmp_path, answers):
    predictions = write_jsonl(tmp_path / "gqa.jsonl", llava_answers(answers["gqa"]))
    scores = score_predictions("gqa", predictions, [fixture_root / "gqa" / "testdev_balanced_questions.json"])
    assert scores["n"] == 4 and scores["correct"] == 2 and scores["unmatched_predictions"] == 0


def test_predictions_without_reference_are_counted_not_scored(fixture_root, tmp_path, answers):
    rows = llava_answers({**answers["gqa"], "999": "yes"})
    predictions = write_jsonl(tmp_path / "gqa.jsonl", rows)
    scores = score_predictions("gqa", predictions, [fixture_root / "gqa" / "testdev_balanced_questions.json"])
    assert scores["n"] == 4 and scores["unmatched_predictions"] == 1
    write_jsonl(predictions, llava_answers({"999": "yes"}))
    with pytest.raises(DataError, match="none of the 1 predictions"):
        score_predictions("gqa", predictions, [fixture_root / "gqa" / "testdev_balanced_questions.json"])


def test_mmbench_llava_all_rounds_output(fixture_root, tmp_path, answers):
    # LLaVA's model_vqa_mmbench --all-rounds writes the TSV index and a round_id.
    rows = [{"question_id": int(qid) % 1_000_000, "round_id": int(qid) // 1_000_000, "text": text}
            for qid, text in answers["mmbench"].items()]
    predictions = write_jsonl(tmp_path / "mmbench.jsonl", rows)
    scores = score_predictions("mmbench", predictions, [fixture_root / "mmbench" / "mmbench_dev_20230712.tsv"])
    assert scores["n"] == 3 and scores["score"] == pytest.approx(100 / 3)
    write_jsonl(predictions, rows[:-1])  # a rotation missing: circular evaluation cannot decide
    with pytest.raises(DataError, match="question 2 has 2 of 3"):
        score_predictions("mmbench", predictions, [fixture_root / "mmbench" / "mmbench_dev_20230712.tsv"])


def test_pope_split_files_and_benchmark_folder_as_annotations(fixture_copy, tmp_path, answers):
    predictions = write_jsonl(tmp_path / "pope.jsonl",
                              [{"question_id": q, "answer": a} for q, a in answers["pope"].items()])
    coco = fixture_copy / "pope" / "coco"
    by_files = score_predictions("pope", predictions, [coco / "coco_pope_random.json",
                                                       coco / "coco_pope_adversarial.json"])
    by_folder = score_predictions("pope", predictions, [fixture_copy / "pope"])
    assert by_files["score"] == by_folder["score"] and by_files["n"] == 8
    # LLaVA's ids only mean something through its question file: give the folder holding it.
    (fixture_copy / "pope" / "llava_pope_test.jsonl").write_text(
        (fixture_copy / "llava" / "llava_pope_test.jsonl").read_text())
    llava = write_jsonl(tmp_path / "llava.jsonl", llava_answers({10: "No", 11: "No"}))
    scores = score_predictions("pope", llava, [fixture_copy / "pope"])
    assert scores["per_split"]["adversarial"]["fn"] == 1 and scores["per_split"]["random"]["tn"] == 1
    with pytest.raises(DataError, match="cannot tell the split"):
        score_predictions("pope", predictions, [fixture_copy / "pope" / "llava_pope_test.jsonl"])


def test_mmvet_llava_numeric_ids(fixture_root, tmp_path):
    predictions = write_jsonl(tmp_path / "mmvet.jsonl", llava_answers({0: "red", 1: "three"}))

    class Exact:
        def grade(self, items):
            return [float(i["prediction"] in i["ground_truth"]) for i in items]

    scores = score_predictions("mmvet", predictions, [fixture_root / "mmvet" / "mm-vet.json"], grader=Exact())
    assert scores["n"] == 2 and scores["score"] == 100.0


def test_predictions_without_references_need_annotations(tmp_path):
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"question_id": "1", "answer": "yes"}])
    with pytest.raises(DataError, match=r"record 0: missing field\(s\) human_answers, answer_type; give --annotations"):
        score_predictions("vqav2", predictions)


def test_cli_score(fixture_root, tmp_path, answers, capsys):
    predictions = write_jsonl(tmp_path / "vizwiz.jsonl", llava_answers(answers["vizwiz"]))
    out = tmp_path / "scores.json"
    code = main(["score", "--benchmark", "vizwiz", "--predictions", str(predictions),
                 "--annotations", str(fixture_root / "vizwiz" / "val.json"), "--output", str(out)])
    assert code == 0
    written = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == written
    assert written["benchmark"] == "vizwiz" and written["n"] == 4
    assert written["score"] == pytest.approx(100 * (1 + 0.6 + 1 + 0.6) / 4)  # see test_spec_scorers


def test_cli_reports_data_errors_without_traceback(tmp_path, capsys):
    code = main(["score", "--benchmark", "gqa", "--predictions", str(tmp_path / "missing.jsonl")])
    assert code == 2
    assert "missing.jsonl: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data_root", str(tmp_path)])  # no --model_path, no --output_dir
    assert "--model_path, --output_dir" in capsys.readouterr().err


def test_cli_native_run_never_loads_the_model_when_all_is_answered(fixture_root, tmp_path, fake_predict, capsys):
    from safeeraser.specificity import run_specificity

    out = tmp_path / "out"
    info = {"model_path": "some/model", "checkpoint_path": None}
    run_specificity(fake_predict, ["gqa", "sqa"], fixture_root, out, run_info=info, progress=False)
    code = main(["--model_path", "some/model", "--benchmarks", "gqa,sqa", "--data_root", str(fixture_root),
                 "--output_dir", str(out)])
    assert code == 0  # "some/model" does not exist: loading it would have failed
    printed = capsys.readouterr().out
    assert "gqa" in printed and "average" in printed


def test_cli_lmms_eval_backend_not_installed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(lmms_eval_backend, "lmms_eval_installed", lambda: False)
    code = main(["--model_path", "m", "--output_dir", str(tmp_path), "--backend", "lmms-eval"])
    assert code == 2
    assert "lmms-eval, which is not installed" in capsys.readouterr().err


def test_lmms_eval_command():
    command = lmms_eval_backend.build_command("merged", ["gqa", "pope", "mmbench"], "out", limit=5, seed=3,
                                              batch_size=2, python="py")
    assert command[:3] == ["py", "-m", "lmms_eval"]
    assert command[command.index("--tasks") + 1] == "gqa,pope,mmbench_en_dev"
    assert command[command.index("--model_args") + 1] == "pretrained=merged"
    assert command[command.index("--limit") + 1] == "5" and command[command.index("--seed") + 1] == "3"
    no_limit = lmms_eval_backend.build_command("merged", ["gqa"], "out", limit=None, seed=0, batch_size=1)
    assert "--limit" not in no_limit


def test_lmms_eval_results_parsed_into_percent(tmp_path):
    old = tmp_path / "llava_hf" / "20240101_results.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"results": {}}))
    new = tmp_path / "llava_hf" / "20240102_results.json"
    new.write_text(json.dumps({"results": {
        "gqa": {"alias": "gqa", "exact_match,none": 0.62, "exact_match_stderr,none": 0.01},
        "pope": {"pope_f1_score,none": 0.85, "pope_accuracy,none": 0.86},
        "mmvet": {"gpt_eval_score,none": 31.5},
        "mmbench_en_dev": {"submission,none": None},
    }}))
    os.utime(old, (1, 1))
    parsed = lmms_eval_backend.parse_results(lmms_eval_backend.find_results_file(tmp_path),
                                             ["gqa", "pope", "mmvet", "mmbench", "sqa"])
    assert parsed["gqa"]["score"] == pytest.approx(62.0)
    assert parsed["pope"]["score"] == pytest.approx(85.0)
    assert parsed["mmvet"]["score"] == pytest.approx(31.5)  # already a percentage
    assert parsed["mmbench"]["score"] is None and "no numeric gpt_eval_score" in parsed["mmbench"]["unavailable"]
    assert parsed["sqa"]["score"] is None and "no result for task scienceqa_img" in parsed["sqa"]["unavailable"]


class FakeGenerator:
    def __init__(self):
        self.calls = []

    def generate(self, requests, settings):
        self.calls.append((requests, settings))
        return [[f"{r.question}|{settings.max_new_tokens}"] for r in requests]


def test_engine_adapter_groups_by_budget_and_decodes_greedily():
    generator = FakeGenerator()
    predict = predict_fn_from_generator(generator)
    requests = [Request("a", Path("x.png"), "q1", 16), Request("b", Path("y.png"), "q2", 128),
                Request("c", Path("z.png"), "q3", 16)]
    assert predict(requests) == ["q1|16", "q2|128", "q3|16"]  # in request order
    assert sorted(len(reqs) for reqs, _ in generator.calls) == [1, 2]
    assert all(settings.greedy for _, settings in generator.calls)
    assert generator.calls[0][0][0].image == Path("x.png")
    with pytest.raises(ValueError, match="needs an image"):
        predict([Request("d", None, "q", 8)])


@pytest.mark.parametrize("judge", ["keyword", "offline", "wildguard"])
def test_cli_offline_judge_is_keyword_as_in_eval_all(fixture_root, tmp_path, fake_predict, capsys, judge):
    """`keyword` (eval_all's name), its former name `offline`, or a judge that grades nothing: MM-Vet unscored."""
    from safeeraser.specificity import run_specificity

    out = tmp_path / "out"
    info = {"model_path": "some/model", "checkpoint_path": None}
    run_specificity(fake_predict, ["gqa"], fixture_root, out, run_info=info, progress=False)
    code = main(["--model_path", "some/model", "--benchmarks", "gqa", "--data_root", str(fixture_root),
                 "--output_dir", str(out), "--judge", judge])
    assert code == 0 and "gqa" in capsys.readouterr().out
