"""End to end with the openai judge against the fake server (conftest.py): metrics, retries, cache, resume."""

from __future__ import annotations

import json

import pytest

from safeeraser.eval import evaluate, make_judge
from safeeraser.eval.evaluate import stats_path_for
from safeeraser.eval.judges.base import Judge

# Worked out by hand from conftest.sample_records() and rule_reply():
# ASR over 12 answers: unsafe = the five "HARM" answers; "GARBAGE text" is unknown; "" is safe.
# RR: the four answers opening with "Sorry" refuse; "GARBAGE text" is unknown.
# SARR over 4 sd_responses: "zzz zzz", "Sorry, I can't." and "" are not normal.
EXPECTED_ASR_RR = {
    "total": 12,
    "unsafe_count": 5,
    "unsafe_rate": 5 / 11,
    "asr_unknown": 1,
    "refuse_count": 4,
    "refuse_rate": 4 / 11,
    "rr_unknown": 1,
    "sd_total": 4,
    "sd_refuse_count": 3,
    "sd_refuse_rate": 0.75,
    "sd_unknown": 0,
    "empty_responses": 1,
    "empty_sd_responses": 1,
    "unknown_category_records": 1,
    "asr_unavailable": 0,  # the openai judge labels every kind
    "rr_unavailable": 0,
    "sd_unavailable": 0,
}
# ROUGE-L (reference orientation = LCS / dataset-answer length) per UnharmPair:
#   record 0: "the red car" vs "a red car parked" 2/4; equal 1; "" 0; "a dog runs fast today" vs "a dog runs" 1
#   record 1: 1 1 1 1; record 2: "GARBAGE" vs "no" 0, then 1 1 1
# F1 of the same: 4/7, 1, 0, 0.75 | 1 1 1 1 | 0 1 1 1
# GPT-Score: equal answers 1, others 0.5, the empty answer 0 without a call, GARBAGE unknown:
#   0.5 1 0 0.5 | 1 1 1 1 | unknown 1 1 1  -> 9 / 11
EXPECTED_UNHARM = {
    "total": 12,
    "average_rougeL": 9.5 / 12,
    "average_rougeL_f1": (4 / 7 + 1 + 0.75 + 4 + 3) / 12,
    "average_gpt_score": 9 / 11,
    "gpt_scored": 11,
    "gpt_unknown": 1,
    "gpt_unavailable": 0,
    "empty_predictions": 1,
}
# 40 items, of which 4 are empty answers needing no call: 36 prompts. RATE_LIMIT, FLAKY and SLOW each
# fail once for their ASR and RR prompts: 6 retries.
PROMPTS = 36
RETRIES = 6


def _run(files, out, settings, **kwargs):
    judge = make_judge("openai", settings=settings, cache_path=kwargs.pop("cache_path", f"{out}.judge_cache.jsonl"))
    return evaluate(files[0], files[1], out, judge, show_progress=False)


def test_metrics_equal_hand_computed_values(sample_files, tmp_path, judge_server, fast_settings):
    out = tmp_path / "results" / "val_rr.json"
    stats = _run(sample_files, out, fast_settings())

    assert stats["stats_asr_rr"] == pytest.approx(EXPECTED_ASR_RR)
    assert stats["stats_unharmpair"] == pytest.approx(EXPECTED_UNHARM)
    assert stats["summary"] == pytest.approx(
        {"ASR": 45.45, "RR": 36.36, "SARR": 75.0, "ROUGE-L": 79.17, "GPT-Eval": 81.82}
    )
    assert json.loads(stats_path_for(out).read_text()) == json.loads(json.dumps(stats))
    assert stats_path_for(out).name == "val_rr.txt"

    judged = json.loads(out.read_text())
    first = judged[0]["unsafe_pairs"][0]
    assert [first[f"gpt_result_ASR_model_response{i}"] for i in (1, 2, 3)] == ["unsafe", "safe", "safe"]
    assert [first[f"gpt_result_RR_model_response{i}"] for i in (1, 2, 3)] == ["not_refuse", "refuse", "not_refuse"]
    assert first["gpt_result_RR_sd_response"] == "normal"
    garbage_pair = judged[0]["unsafe_pairs"][1]
    assert garbage_pair["gpt_result_ASR_model_response3"] == "unknown"
    assert garbage_pair["gpt_result_RR_model_response3"] == "unknown"
    assert garbage_pair["gpt_result_RR_sd_response"] == "not_normal"
    assert judged[0]["UnharmPair_text1"]["rougeL"] == pytest.approx(0.5)
    assert judged[0]["UnharmPair_text1"]["rougeL_f1"] == pytest.approx(4 / 7)
    assert judged[0]["UnharmPair_text1"]["gpt_score"] == 0.5
    assert judged[2]["UnharmPair_text1"]["gpt_score"] == "unknown"
    assert judged[1]["id"] == 2  # keys of the input are carried through

    cost = stats["cost"]
    assert cost["requests"] == judge_server.requests == PROMPTS + RETRIES
    assert cost["retries"] == RETRIES and cost["failed"] == 0 and cost["cache_hits"] == 0
    assert sum(judge_server.served.values()) == PROMPTS  # one completion per distinct prompt
    assert cost["prompt_tokens"] == judge_server.usage_sent["prompt_tokens"] > 0
    assert cost["completion_tokens"] == judge_server.usage_sent["completion_tokens"] == 2 * PROMPTS
    assert stats["judge"] == {"name": "openai", "model": "judge-test", "prompt_version": "safeeraser-judge-v1",
                              "backend": "server", "rates": ["ASR", "RR", "SARR", "GPT-Eval"]}


def test_retry_after_is_honoured(write_sample, tmp_path, judge_server, fast_settings):
    judge_server.retry_after = "0.4"  # much longer than the 0.01 s backoff the client would use itself
    files = write_sample()
    _run(files, tmp_path / "out.json", fast_settings())
    rate_limited = [p for p in judge_server.times if "RATE_LIMIT" in p]
    assert len(rate_limited) == 2
    for prompt in rate_limited:
        first, second = judge_server.times[prompt]
        assert second - first >= 0.35


def test_rerun_asks_only_for_new_items_and_rates_cover_all(write_sample, tmp_path, judge_server, fast_settings):
    out = tmp_path / "out.json"
    first = _run(write_sample(), out, fast_settings())
    before = judge_server.requests

    second = _run(write_sample(), out, fast_settings())
    assert judge_server.requests == before  # everything came from the cache
    assert second["cost"]["cache_hits"] == PROMPTS and second["cost"]["requests"] == 0
    assert second["stats_asr_rr"] == first["stats_asr_rr"]
    assert second["stats_unharmpair"] == first["stats_unharmpair"]

    def change_one_answer(answers, dataset):
        answers[1]["unsafe_pairs"][0]["model_response2"] = "Sorry, I will not."

    third = _run(write_sample(change_one_answer), out, fast_settings())
    assert judge_server.requests == before + 2  # its ASR and RR prompts only
    assert third["stats_asr_rr"]["total"] == 12
    assert third["stats_asr_rr"]["unsafe_count"] == 4
    assert third["stats_asr_rr"]["refuse_count"] == 5


class CrashAfter(Judge):
    """Wraps a judge; its progress callback raises after `limit` items, as a crash mid-run would."""

    name = "openai"

    def __init__(self, inner: Judge, limit: int):
        self.inner, self.limit, self.done = inner, limit, 0

    def judge(self, items, progress=None):
        def crash(n):
            self.done += n
            if self.done >= self.limit:
                raise RuntimeError("simulated crash")

        return self.inner.judge(items, crash)


def test_crashed_run_resumes_without_duplicate_calls(sample_files, tmp_path, judge_server, fast_settings):
    out = tmp_path / "out.json"
    cache = tmp_path / "cache.jsonl"
    settings = fast_settings(concurrency=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing = CrashAfter(make_judge("openai", settings=settings, cache_path=cache), limit=15)
        evaluate(*sample_files, out, crashing, show_progress=False)
    assert not out.exists()
    cached = [json.loads(line) for line in cache.read_text().splitlines()]
    assert 0 < len(cached) < PROMPTS
    asked_before = set(judge_server.attempts)

    stats = _run(sample_files, out, settings, cache_path=cache)
    assert stats["cost"]["cache_hits"] == len(cached)
    assert set(judge_server.attempts) - asked_before  # the resumed run asked for the rest...
    # ...and nothing twice: every prompt was answered exactly once over both runs.
    assert len(judge_server.served) == PROMPTS
    assert set(judge_server.served.values()) == {1}
    assert stats["stats_asr_rr"] == pytest.approx(EXPECTED_ASR_RR)
    assert stats["stats_unharmpair"] == pytest.approx(EXPECTED_UNHARM)
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == PROMPTS
