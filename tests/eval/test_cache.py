from __future__ import annotations

import json

from safeeraser.eval.judges.cache import JudgmentCache, cache_key


def test_a_torn_last_line_is_dropped_and_new_rows_start_on_a_fresh_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text(json.dumps({"key": "a", "reply": "safe"}) + "\n" + '{"key": "b", "rep')
    with JudgmentCache(path) as cache:
        assert cache.get("a")["reply"] == "safe" and cache.get("b") is None
        cache.put("b", "unsafe")
    reread = JudgmentCache(path)
    assert reread.get("a")["reply"] == "safe" and reread.get("b")["reply"] == "unsafe"
    assert len(path.read_text().splitlines()) == 2


def test_each_row_is_on_disk_as_soon_as_it_is_put(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = JudgmentCache(path)
    cache.put("k", "yes")
    assert json.loads(path.read_text())["reply"] == "yes"  # before close
    cache.close()


def test_key_depends_on_model_version_and_prompt():
    keys = {
        cache_key("m", "v1", "p"),
        cache_key("m2", "v1", "p"),
        cache_key("m", "v2", "p"),
        cache_key("m", "v1", "p "),
    }
    assert len(keys) == 4
