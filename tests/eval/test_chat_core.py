"""The generic judge core on its own, as another benchmark (MM-Vet grading, a 0-1 score) would use it."""

from __future__ import annotations

import json

import pytest

from safeeraser.eval.judges.base import FAILED, OK, UNPARSED, JudgeConfigError
from safeeraser.eval.judges.chat import Ask, ChatJudgeCore
from safeeraser.eval.judges.parsing import parse_score


def grade_rule(prompt: str) -> str:
    return {"grade: exact": "1.0", "grade: partial": "The score is 0.4.", "grade: rambling": "Maybe 3 or 4?"}.get(
        prompt.split(" |")[0], "0"
    )


def test_a_custom_prompt_and_parser_get_scores_and_unknowns(tmp_path, judge_server, fast_settings):
    judge_server.rule = grade_rule
    core = ChatJudgeCore(fast_settings(), "mmvet-v1", tmp_path / "cache.jsonl")
    prompts = ["grade: exact | a", "grade: partial | b", "grade: rambling | c", "grade: exact | a"]
    seen = []
    results = core.ask([Ask(p, parse_score) for p in prompts], progress=seen.append)
    assert [r.value for r in results] == [1.0, 0.4, None, 1.0]
    assert [r.status for r in results] == [OK, OK, UNPARSED, OK]
    assert results[2].reply == "Maybe 3 or 4?"
    assert sum(seen) == 4
    assert judge_server.requests == 3  # the repeated prompt is asked once


def test_malformed_200_is_retried_and_a_400_fails_without_retry_or_cache(tmp_path, judge_server, fast_settings):
    judge_server.rule = lambda prompt: "0.5"
    cache = tmp_path / "cache.jsonl"
    core = ChatJudgeCore(fast_settings(), "v1", cache)
    html, bad = core.ask([Ask("HTML page first", parse_score), Ask("BADREQ prompt", parse_score)])
    assert html.value == 0.5 and judge_server.attempts["HTML page first"] == 2
    assert bad.status == FAILED and judge_server.attempts["BADREQ prompt"] == 1
    assert core.usage.failed == 1 and core.usage.retries == 1
    assert [json.loads(line)["reply"] for line in cache.read_text().splitlines()] == ["0.5"]

    again = ChatJudgeCore(fast_settings(), "v1", cache).ask(
        [Ask("HTML page first", parse_score), Ask("BADREQ prompt", parse_score)]
    )
    assert again[0].value == 0.5 and judge_server.attempts["HTML page first"] == 2  # from the cache
    assert judge_server.attempts["BADREQ prompt"] == 2  # a failure is asked again on the next run


def test_concurrency_is_bounded(judge_server, fast_settings):
    judge_server.rule = lambda prompt: "1"
    judge_server.delay = 0.05
    # a timeout no reply can reach on a loaded machine: a retried request would leave its first attempt in
    # flight at the server and count twice there (CI once saw 4)
    core = ChatJudgeCore(fast_settings(concurrency=3, timeout=30.0), "v1", None)
    core.ask([Ask(f"prompt {i}", parse_score) for i in range(12)])
    assert core.usage.retries == 0 and judge_server.max_in_flight == 3


def test_persistent_5xx_ends_as_failed_after_the_retries(judge_server, fast_settings):
    judge_server.status_for_all = 503
    core = ChatJudgeCore(fast_settings(max_retries=2), "v1", None)
    (result,) = core.ask([Ask("anything", parse_score)])
    assert result.status == FAILED and result.stored() == "unknown"
    assert judge_server.requests == 3 and core.usage.retries == 2


def test_unreachable_endpoint_is_a_config_error(fast_settings):
    settings = fast_settings(base_url="http://127.0.0.1:9/v1", max_retries=1)  # the discard port: nothing listens
    with pytest.raises(JudgeConfigError, match="cannot reach"):
        ChatJudgeCore(settings, "v1", None).ask([Ask("anything", parse_score)])


def test_model_and_prompt_version_key_the_cache(tmp_path, judge_server, fast_settings):
    judge_server.rule = lambda prompt: "1"
    cache = tmp_path / "cache.jsonl"
    ChatJudgeCore(fast_settings(), "v1", cache).ask([Ask("same prompt", parse_score)])
    ChatJudgeCore(fast_settings(), "v2", cache).ask([Ask("same prompt", parse_score)])
    ChatJudgeCore(fast_settings(model="other"), "v1", cache).ask([Ask("same prompt", parse_score)])
    ChatJudgeCore(fast_settings(), "v1", cache).ask([Ask("same prompt", parse_score)])
    assert judge_server.requests == 3


def test_settings_repr_hides_the_key(fast_settings, test_key):
    assert test_key not in repr(fast_settings())
