"""judge-agreement: Cohen's kappa, confusion matrix and rate differences of two judged files."""

from __future__ import annotations

import json

import pytest

from safeeraser.eval.agreement import cohen_kappa, main


def _judged(asr: list, rr: list, sd: list) -> list[dict]:
    """Two records of one unsafe pair each: asr/rr hold 6 labels (3 answers a record), sd 2."""
    records = []
    for i in range(2):
        pair = {"question": f"q{i}", "sd_response": "s", "gpt_result_RR_sd_response": sd[i]}
        for k in range(3):
            key = f"model_response{k + 1}"
            pair[key] = f"answer {i}-{k}"
            pair[f"gpt_result_ASR_{key}"] = asr[3 * i + k]
            pair[f"gpt_result_RR_{key}"] = rr[3 * i + k]
        records.append({"image_path": f"x/{i}.png", "unsafe_pairs": [pair]})
    return records


def test_kappa_confusion_and_rates_by_hand(tmp_path, capsys):
    a = _judged(["unsafe", "unsafe", "safe", "safe", "unknown", "safe"], ["refuse"] * 6, ["normal", "not_normal"])
    b = _judged(["unsafe", "safe", "safe", "safe", "unsafe", "unknown"], [None] * 6, ["normal", "not_normal"])
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    out = tmp_path / "agreement.json"
    assert main(["--a", str(tmp_path / "a.json"), "--b", str(tmp_path / "b.json"), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    asr = result["ASR"]
    # Both labelled: (u,u) (u,s) (s,s) (s,s): observed 3/4, chance (2*1 + 2*3)/16 = 1/2 -> kappa 1/2.
    assert asr["both_labelled"] == 4 and asr["a_unknown"] == 1 and asr["b_unknown"] == 1
    assert asr["agreement"] == 0.75 and asr["kappa"] == pytest.approx(0.5)
    assert asr["confusion"] == {"unsafe": {"unsafe": 1, "safe": 1}, "safe": {"safe": 2}}
    assert (asr["rate_a_shared"], asr["rate_b_shared"], asr["difference_shared"]) == (50.0, 25.0, -25.0)
    assert (asr["rate_a"], asr["rate_b"]) == (40.0, 40.0)  # each over its own 5 labelled answers
    assert result["RR"] == {"available": False, "items": 6}  # b's judge has no refusal judgment
    assert result["SARR"]["kappa"] == pytest.approx(1.0) and result["SARR"]["difference_shared"] == 0.0
    printed = capsys.readouterr().out
    assert "RR" in printed and "n/a: one judge cannot produce RR" in printed


def test_kappa_is_undefined_when_both_judges_say_one_thing():
    assert cohen_kappa([("safe", "safe")] * 3) is None and cohen_kappa([]) is None


def test_files_of_different_answers_are_one_error(tmp_path, capsys):
    labels = ["safe"] * 6
    a, b = _judged(labels, labels, ["normal"] * 2), _judged(labels, labels, ["normal"] * 2)
    b[1]["unsafe_pairs"][0]["model_response2"] = "another answer"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main(["--a", str(tmp_path / "a.json"), "--b", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "record 1" in err and "model_response2" in err and err.count("\n") == 1


def test_a_file_that_is_not_judged_is_one_error(tmp_path, capsys, sample_files):
    assert main(["--a", str(sample_files[0]), "--b", str(sample_files[0])]) == 2
    err = capsys.readouterr().err
    assert "gpt_result_ASR_model_response1" in err and err.count("\n") == 1


def test_two_real_judges_on_the_same_answers(sample_files, tmp_path, capsys):
    """keyword vs keyword from eval_all's own outputs: full agreement, no new calls needed."""
    from safeeraser.eval.command import main as eval_main

    for name in ("a", "b"):
        assert eval_main(["--input_file", str(sample_files[0]), "--file_refer", str(sample_files[1]),
                          "--output_file_rr", str(tmp_path / f"{name}.json"), "--judge", "keyword",
                          "--no_progress"]) == 0
    assert main(["--a", str(tmp_path / "a.json"), "--b", str(tmp_path / "b.json"),
                 "--output", str(tmp_path / "ag.json")]) == 0
    result = json.loads((tmp_path / "ag.json").read_text())
    assert result["ASR"]["agreement"] == 1.0 and result["ASR"]["both_labelled"] == 12


def test_the_safeeraser_command_runs_it(sample_files, tmp_path, capsys):
    from safeeraser.cli import main as cli_main
    from safeeraser.eval.command import main as eval_main

    for name in ("first", "second"):  # (the truth judge refuses these answers: they are not the mini's)
        assert eval_main(["--input_file", str(sample_files[0]), "--file_refer", str(sample_files[1]),
                          "--output_file_rr", str(tmp_path / f"{name}.json"), "--judge", "keyword",
                          "--no_progress"]) == 0
    capsys.readouterr()
    assert cli_main(["judge-agreement", "--a", str(tmp_path / "first.json"), "--b", str(tmp_path / "second.json")]) == 0
    assert "kappa" in capsys.readouterr().out
