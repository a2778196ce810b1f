import json

from safeeraser.io import append_jsonl, read_jsonl_tolerant


def test_append_after_a_torn_last_line_starts_on_a_fresh_line(tmp_path):
    path = tmp_path / "part.jsonl"
    path.write_text(json.dumps({"index": 0}) + "\n" + '{"index": 1, "unsafe_pa')  # a writer killed mid-row
    assert read_jsonl_tolerant(path) == [{"index": 0}]
    append_jsonl(path, [{"index": 1}, {"index": 2}])
    assert read_jsonl_tolerant(path) == [{"index": 0}, {"index": 1}, {"index": 2}]
    append_jsonl(path, [{"index": 3}])  # an intact file is only appended to
    assert [r["index"] for r in read_jsonl_tolerant(path)] == [0, 1, 2, 3]
