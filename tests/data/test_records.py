import json
import logging

import pytest

from safeeraser.data.records import load_benchmark, category_of
from safeeraser.io import DataError


def _write(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def good(mini_dir):
    return json.loads((mini_dir / "all_train.json").read_text())


def _abs(records, mini_dir):
    for r in records:
        r["image_path"] = str(mini_dir / r["image_path"])
        r["SDImage_path"] = str(mini_dir / r["SDImage_path"])
    return records


def test_loads_list_and_jsonl(mini_dir, tmp_path, good):
    recs = load_benchmark(mini_dir / "all_train.json")
    assert len(recs) == len(good)
    assert recs[0].category == "Violence"
    jl = tmp_path / "x.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in _abs(good, mini_dir)))
    assert [r.raw["unsafe_pairs"] for r in load_benchmark(jl)] == [r["unsafe_pairs"] for r in good]


def test_extra_keys_kept(mini_dir, tmp_path, good):
    good = _abs(good, mini_dir)
    good[0]["my_key"] = {"x": 1}
    recs = load_benchmark(_write(tmp_path / "d.json", good))
    assert recs[0].raw["my_key"] == {"x": 1}


def test_malformed_json_names_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[{"image_path": "a.png",\n  "unsafe_pairs": [}]')
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON at line 2"):
        load_benchmark(p)


def test_malformed_jsonl_names_record(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"malformed JSON line 2 \(record 1\)"):
        load_benchmark(p)


@pytest.mark.parametrize("mutate, field, problem", [
    (lambda r: r.pop("unsafe_pairs"), "unsafe_pairs", "missing"),
    (lambda r: r.__setitem__("unsafe_pairs", []), "unsafe_pairs", "empty list"),
    (lambda r: r.__setitem__("unsafe_pairs", "q"), "unsafe_pairs", "expected a list"),
    (lambda r: r["unsafe_pairs"][1].pop("sd_response"), r"unsafe_pairs\[1\]\.sd_response", "missing"),
    (lambda r: r["unsafe_pairs"][0].__setitem__("question", 3), r"unsafe_pairs\[0\]\.question", "expected a string"),
    (lambda r: r.pop("UnharmPair_image2"), "UnharmPair_image2", "missing"),
    (lambda r: r["UnharmPair_text1"].pop("Prediction"), r"UnharmPair_text1\.Prediction", "missing"),
    (lambda r: r.__setitem__("image_path", 5), "image_path", "expected a string"),
    (lambda r: r.__setitem__("image_path", "nowhere/Violence/x.png"), "image_path", "does not exist"),
])
def test_each_bad_field_is_named(mini_dir, tmp_path, good, mutate, field, problem):
    good = _abs(good, mini_dir)
    mutate(good[3])
    with pytest.raises(DataError, match=rf"d\.json: record 3: field '{field}': .*{problem}"):
        load_benchmark(_write(tmp_path / "d.json", good))


def test_not_an_image(mini_dir, tmp_path, good):
    good = _abs(good, mini_dir)
    fake = tmp_path / "Violence" / "fake.png"
    fake.parent.mkdir()
    fake.write_text("not a png")
    good[1]["SDImage_path"] = str(fake)
    with pytest.raises(DataError, match=r"record 1: field 'SDImage_path': .*not a readable image"):
        load_benchmark(_write(tmp_path / "d.json", good))


def test_unknown_category_warns_not_crashes(mini_dir, tmp_path, good, caplog):
    good = _abs(good, mini_dir)
    other = tmp_path / "Gambling" / "g.png"
    other.parent.mkdir()
    other.write_bytes((mini_dir / good[0]["image_path"]).read_bytes())
    good[2]["image_path"] = str(other)
    with caplog.at_level(logging.WARNING):
        recs = load_benchmark(_write(tmp_path / "d.json", good))
    assert recs[2].category is None
    assert "record 2" in caplog.text and "Gambling" in caplog.text


def test_relative_paths_resolve_beside_data_file_then_cwd(mini_dir, tmp_path, monkeypatch, good):
    # beside the data file
    assert load_benchmark(mini_dir / "all_train.json")[0].image == mini_dir / good[0]["image_path"]
    # not beside it: falls back to the working directory
    d = tmp_path / "elsewhere"
    d.mkdir()
    _write(d / "d.json", good)
    monkeypatch.chdir(mini_dir)
    rec = load_benchmark(d / "d.json")[0]
    assert rec.image.resolve() == (mini_dir / good[0]["image_path"]).resolve()


def test_category_of():
    assert category_of("dataset/x/HateSpeech/1.png") == "HateSpeech"
    assert category_of("a/b.png") is None


def test_non_utf8_file_names_the_file(mini_dir, tmp_path, good):
    path = tmp_path / "latin1.json"
    text = json.dumps(_abs(good, mini_dir), ensure_ascii=False)
    text = text.replace(good[1]["unsafe_pairs"][0]["question"], "caf\u00e9", 1)
    path.write_bytes(text.encode("latin-1", errors="replace"))
    with pytest.raises(DataError, match=rf"{path}: not UTF-8 text: byte 0xe9 at offset {text.index('caf') + 3}"):
        load_benchmark(path)
