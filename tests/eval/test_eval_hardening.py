"""eval_all.py refuses what would lose or corrupt work: colliding outputs, a cache that is a folder or
not a cache, and reports a malformed input before loading anything heavy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safeeraser.eval.command import main

REPO = Path(__file__).resolve().parents[2]


def _run(files, out, *extra):
    return main(["--input_file", str(files[0]), "--file_refer", str(files[1]), "--output_file_rr", str(out),
                 "--judge", "keyword", "--no_progress", *extra])


def test_output_ending_in_txt_would_be_its_own_stats_file(sample_files, tmp_path, capsys):
    out = tmp_path / "a.txt"
    assert _run(sample_files, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "same file" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("which", ["input", "refer"])
def test_output_or_its_stats_must_not_overwrite_an_input(sample_files, tmp_path, capsys, which):
    target = sample_files[0] if which == "input" else sample_files[1]
    before = target.read_text()
    assert _run(sample_files, target) == 2
    assert "same file" in capsys.readouterr().err and target.read_text() == before


@pytest.mark.parametrize("which", ["input", "refer", "output", "stats"])
def test_cache_must_not_be_an_input_or_an_output(sample_files, tmp_path, capsys, which):
    out = tmp_path / "out.json"
    cache = {"input": sample_files[0], "refer": sample_files[1], "output": out, "stats": out.with_suffix(".txt")}
    before = sample_files[0].read_text()
    assert _run(sample_files, out, "--cache_file", str(cache[which])) == 2
    err = capsys.readouterr().err
    assert "--cache_file" in err and "same file" in err
    assert sample_files[0].read_text() == before


def test_cache_that_is_a_folder_is_one_error(sample_files, tmp_path, capsys):
    folder = tmp_path / "cache_dir"
    folder.mkdir()
    assert main(["--input_file", str(sample_files[0]), "--file_refer", str(sample_files[1]),
                 "--output_file_rr", str(tmp_path / "o.json"), "--cache_file", str(folder), "--judge", "wildguard",
                 "--base_url", "http://127.0.0.1:9/v1", "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --cache_file {folder} is a folder; give a file path\n"


def test_cache_row_without_its_key_is_one_error_naming_the_row(sample_files, tmp_path, capsys):
    from safeeraser.eval.judges.cache import JudgmentCache
    from safeeraser.io import DataError

    cache = tmp_path / "cache.jsonl"
    cache.write_text(json.dumps({"key": "k1", "reply": "safe"}) + "\n" + json.dumps({"reply": "safe"}) + "\n")
    with pytest.raises(DataError, match=r"cache.jsonl: row 2: not a judge cache row"):
        JudgmentCache(cache)
    # Through the command: one line, before any request (the endpoint does not even exist).
    assert main(["--input_file", str(sample_files[0]), "--file_refer", str(sample_files[1]),
                 "--output_file_rr", str(tmp_path / "o.json"), "--cache_file", str(cache), "--judge", "wildguard",
                 "--base_url", "http://127.0.0.1:9/v1", "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and err.count("\n") == 1
    assert cache.read_text().count("\n") == 2  # left as it was


def test_malformed_input_is_reported_before_heavy_imports(sample_files, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_path": "a.png",')
    code = (
        "import sys; from safeeraser.eval.command import main; "
        f"rc = main(['--input_file', {str(bad)!r}, '--file_refer', {str(sample_files[1])!r}, "
        f"'--output_file_rr', {str(tmp_path / 'o.json')!r}, '--judge', 'wildguard', '--backend', 'hf']); "
        "print(rc, sorted(m for m in ('openai', 'torch', 'transformers') if m in sys.modules))"
    )
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    elapsed = time.perf_counter() - t0
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.startswith(f"error: {bad}: malformed JSON") and done.stderr.count("\n") == 1
    assert elapsed < 5  # no model, no client: well under a second of work plus the interpreter


def test_output_in_a_folder_that_cannot_be_made_is_one_error_before_judging(sample_files, tmp_path, capsys):
    from safeeraser.eval.command import main

    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    rc = main(["--input_file", str(sample_files[0]), "--file_refer", str(sample_files[1]), "--judge", "keyword",
               "--output_file_rr", str(blocker / "out" / "val_rr.json"), "--no_progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --output_file_rr: cannot write in folder") and err.count("\n") == 1


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_negative_or_unbounded_backoff_is_one_error_before_anything_is_read(sample_files, tmp_path, capsys, value):
    assert _run(sample_files, tmp_path / "o.json", "--backoff", value) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--backoff" in err and err.count("\n") == 1
    assert not (tmp_path / "o.json").exists()


def test_backoff_reaches_the_judges_settings(sample_files, tmp_path, monkeypatch):
    import safeeraser.eval.command as command

    seen = {}

    def stop(name, settings, **kwargs):
        seen["settings"] = settings
        raise SystemExit(0)

    monkeypatch.setattr(command, "make_judge", stop)
    with pytest.raises(SystemExit):
        _run(sample_files, tmp_path / "o.json", "--backoff", "0.25")
    assert seen["settings"].backoff == 0.25
