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


def test_torn_last_line_inside_a_character_is_dropped(tmp_path):
    path = tmp_path / "part.jsonl"
    row = json.dumps({"answer": "caf\u00e9"}, ensure_ascii=False).encode()
    path.write_bytes(json.dumps({"index": 0}).encode() + b"\n" + row[:row.index(b"\xc3") + 1])  # half of the é
    assert read_jsonl_tolerant(path) == [{"index": 0}]
    path.write_bytes(json.dumps({"index": 0}).encode() + b"\n" + row)  # complete, only the newline missing
    assert read_jsonl_tolerant(path) == [{"index": 0}, {"answer": "caf\u00e9"}]


def test_non_utf8_file_is_a_data_error_naming_file_and_offset(tmp_path):
    import pytest

    from safeeraser.io import DataError, read_json_records

    listed = tmp_path / "list.json"
    listed.write_bytes('[{"q": "caf\u00e9"}]'.encode("latin-1"))
    with pytest.raises(DataError, match=rf"{listed}: not UTF-8 text: byte 0xe9 at offset 11 \(line 1\)"):
        read_json_records(listed)
    lines = tmp_path / "rows.jsonl"
    lines.write_bytes(b'{"q": "a"}\n{"q": "\xff"}\n')
    with pytest.raises(DataError, match=rf"{lines}: not UTF-8 text: byte 0xff at offset 18 \(line 2\)"):
        read_json_records(lines)
    with pytest.raises(DataError, match=rf"{lines}: not UTF-8 text: byte 0xff at offset 18 \(line 2\)"):
        read_jsonl_tolerant(lines)


def test_ensure_writable_dir(tmp_path):
    import pytest

    from safeeraser.io import DataError, ensure_writable_dir

    ensure_writable_dir(tmp_path / "new" / "sub", "out")
    assert (tmp_path / "new" / "sub").is_dir() and not list((tmp_path / "new" / "sub").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="out: cannot write in folder"):
        ensure_writable_dir(tmp_path / "file" / "sub", "out")
