"""The reference's judge prompts read from a checkout (a stand-in with our own text, laid out as the real
one), and its aggregation, against counts worked out by hand."""
from __future__ import annotations

import json

import pytest

import fake_reference_checkout as fake
from safeeraser.eval import evaluate, make_judge
from safeeraser.eval.judges import JudgeOptionError
from safeeraser.eval.judges.base import ASR, FAILED, OK, RR, RR_SD, SCORE, UNPARSED, JudgeItem, Judgment
from safeeraser.eval.reference_rules import reference_stats
from safeeraser.reference.checkout import CheckoutError
from safeeraser.reference.judge_templates import load_reference_templates


def test_templates_are_parsed_not_run(tmp_path):
    # The fake files call os._exit(7) at the top: reading them by import would end the test process
    t = load_reference_templates(fake.write(tmp_path))
    assert t.asr == {c: fake.asr_template(c) for c in fake.CATEGORIES}
    assert (t.rr, t.rr_sd, t.system, t.model) == (fake.RR_TEMPLATE, fake.RR_SD_TEMPLATE, fake.JUDGE_SYSTEM,
                                                    "judge-model-x")
    assert t.score_prompt("Q?", "model says", "dataset says") == fake.score_prompt("Q?", "model says", "dataset says")


@pytest.mark.parametrize("break_it, where, what", [
    (lambda root: (root / "eval" / "eval_config.py").unlink(), "eval_config.py", "not found"),
    (lambda root: (root / "eval_all.py").write_text("def gpt_4_call(): pass\n"), "eval_all.py", "evaluate_unharmpair"),
    (lambda root: (root / "eval" / "eval_config.py").write_text("TEMPLATES = {'RR': {'template': '{prediction}'}}"),
     "eval_config.py", "RR_sd"),
    (lambda root: (root / "eval" / "eval_config.py").write_text(
        "TEMPLATES = {'RR': {'template': '{x}'}, 'RR_sd': {'template': '{prediction}'}, 'A': {'template': '{prediction}'}}"),
     "eval_config.py", "fields ['x']"),
    (lambda root: (root / "eval" / "eval_config.py").write_text("TEMPLATES = make()"), "eval_config.py", "literal"),
    (lambda root: (root / "eval_all.py").write_text("def gpt_4_call(:"), "eval_all.py", "cannot parse"),
])
def test_a_checkout_without_the_templates_is_one_clear_error(tmp_path, break_it, where, what):
    root = fake.write(tmp_path)
    break_it(root)
    with pytest.raises(CheckoutError) as err:
        load_reference_templates(root)
    assert where in str(err.value) and what in str(err.value)


def test_not_a_checkout_fails_before_any_request(tmp_path, judge_server, fast_settings):
    with pytest.raises(JudgeOptionError, match=r"reference_dir: .*model_config|reference_dir: .*eval_config"):
        make_judge("openai", settings=fast_settings(), templates="reference", reference_dir=str(tmp_path))
    with pytest.raises(JudgeOptionError, match="templates"):
        make_judge("keyword", templates="reference", reference_dir=str(tmp_path))
    assert judge_server.requests == 0


def _files(tmp_path, answers, dataset):
    a, d = tmp_path / "answers.json", tmp_path / "dataset.json"
    a.write_text(json.dumps(answers))
    d.write_text(json.dumps(dataset))
    return a, d


def test_reference_prompts_are_sent_as_the_reference_builds_them(tmp_path, judge_server, fast_settings):
    root = fake.write(tmp_path / "ref")
    pair = {"question": "How?", "model_response1": "HARM plan", "model_response2": "   ", "model_response3": "",
            "sd_response": "A normal answer."}
    answers = {"image_path": "dataset/images/Weapon/1.png", "SDImage_path": "s.png", "unsafe_pairs": [pair]}
    dataset = {"image_path": "dataset/images/Weapon/1.png", "SDImage_path": "s.png",
               "unsafe_pairs": [{"question": "How?", "model_response": "x", "sd_response": "y"}]}
    for i, key in enumerate(("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2")):
        answers[key] = {"Question": f" Q{i}? ", "Prediction": f" model answer {i} " if i else ""}
        dataset[key] = {"Question": f" Q{i}? ", "Prediction": f"dataset answer {i}"}
    judge_server.rule = lambda prompt: "0.5" if prompt.startswith("Grade") else "no"
    a, d = _files(tmp_path, [answers], [dataset])
    judge = make_judge("openai", settings=fast_settings(model=None), templates="reference", reference_dir=str(root),
                       cache_path=tmp_path / "c.jsonl")
    evaluate(a, d, tmp_path / "out.json", judge, show_progress=False)
    sent = [(b["model"], b["messages"], "temperature" in b, "max_tokens" in b) for b in judge_server.bodies]
    system = {"role": "system", "content": fake.JUDGE_SYSTEM}
    expected = []
    for answer in ("HARM plan", "   "):  # the empty third answer is not asked; the blank one is
        expected += [[system, {"role": "user", "content": fake.asr_template("Weapon").format(prediction=answer)}],
                     [system, {"role": "user", "content": fake.RR_TEMPLATE.format(prediction=answer)}]]
    expected.append([system, {"role": "user", "content": fake.RR_SD_TEMPLATE.format(prediction="A normal answer.")}])
    # GPT-Eval: stripped, the model's answer as the "correct answer"; the pair with an empty answer is not asked
    expected += [[system, {"role": "user", "content": fake.score_prompt(f"Q{i}?", f"model answer {i}", f"dataset answer {i}")}]
                 for i in (1, 2, 3)]
    assert sorted(json.dumps(m) for _, m, _, _ in sent) == sorted(json.dumps(m) for m in expected)
    assert {(model, temp, tokens) for model, _, temp, tokens in sent} == {("judge-model-x", False, False)}


def _j(reply, status=OK, value="x"):
    return Judgment(value if status == OK else None, status, reply)


def test_reference_aggregation_counts_as_the_reference_does():
    items = [JudgeItem(ASR, "q", "HARM plan"), JudgeItem(RR, "q", "HARM plan"),
             JudgeItem(ASR, "q", "   "), JudgeItem(RR, "q", "   "),
             JudgeItem(ASR, "q", ""), JudgeItem(RR, "q", ""),  # not asked, not counted
             JudgeItem(ASR, "q", "Sorry, I refuse"), JudgeItem(RR, "q", "Sorry, I refuse"),
             JudgeItem(ASR, "q", "lost"), JudgeItem(RR, "q", "lost"),
             JudgeItem(RR_SD, "q", "fine"), JudgeItem(RR_SD, "q", "zzz"), JudgeItem(RR_SD, "q", ""),
             JudgeItem(SCORE, "q", "a red car", reference="a red car parked"),
             JudgeItem(SCORE, "q", "GARBAGE", reference="no"),
             JudgeItem(SCORE, "q", " ", reference="blue sky"),  # empty once stripped: left out of both averages
             JudgeItem(SCORE, "q", "lost", reference="x")]
    judgments = [_j("Unsafe."), _j("No."),
                 _j("I cannot tell", UNPARSED), _j("nope", value="not_refuse"),
                 _j(None, value="safe"), _j(None, value="not_refuse"),
                 _j("safe"), _j("Yes, it refuses"),
                 _j(None, FAILED), _j(None, FAILED),
                 _j("yes"), _j("Not normal: no"), _j(None, value="not_normal"),
                 _j("0.75\nbecause"), _j("Score: 0.9", UNPARSED), _j(None, value=0.0), _j(None, FAILED)]
    rouge = [0.5, 0.0, 0.0, 1.0]
    got = reference_stats(items, judgments, rouge)
    # ASR asked 4 times (the failed request included): unsafe = "Unsafe." -> 1/4
    # RR asked 4 times: "Yes, it refuses" -> 1/4 ("No." and "nope" read as no)
    # SD asked twice ("" is not): "Not normal: no" has no "yes" and has "no" -> refused, 1/2
    # scores over 3 pairs: 0.75, "Score: 0.9" -> 0.0, failed -> 0.0; ROUGE over the same: 0.5, 0, 1
    assert got == {"total_asr_queries": 4, "unsafe_count": 1, "unsafe_rate": 0.25,
                   "total_rr_queries": 4, "refuse_count": 1, "refuse_rate": 0.25,
                   "total_sd_rr_queries": 2, "sd_refuse_count": 1, "sd_refuse_rate": 0.5,
                   "average_rougeL": 1.5 / 3, "average_gpt_score": 0.75 / 3}


def test_reference_aggregation_of_nothing_is_zero():
    assert reference_stats([], [], [])["unsafe_rate"] == 0


def test_eval_all_names_the_missing_file_of_a_bad_reference_dir(tmp_path, write_sample, judge_server, capsys,
                                                                 monkeypatch):
    from safeeraser.eval.command import main

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    answers, dataset = write_sample()
    root = fake.write(tmp_path / "ref")
    (root / "eval" / "eval_config.py").unlink()
    code = main(["--input_file", str(answers), "--file_refer", str(dataset), "--output_file_rr",
                 str(tmp_path / "out.json"), "--templates", "reference", "--reference_dir", str(root),
                 "--base_url", judge_server.url, "--no_progress"])
    assert code == 2
    assert f"{root / 'eval' / 'eval_config.py'}: not found" in capsys.readouterr().err
    assert judge_server.requests == 0
