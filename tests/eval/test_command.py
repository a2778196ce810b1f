"""eval_all.py as a command: outputs, exit codes, the API key, and resuming after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from safeeraser.eval.command import build_parser, main
from safeeraser.eval.judges import judge_class

REPO = Path(__file__).resolve().parents[2]


def _args(files, out, server, *extra):
    return [
        "--input_file",
        str(files[0]),
        "--output_file_rr",
        str(out),
        "--file_refer",
        str(files[1]),
        "--base_url",
        server.url,
        "--judge_model",
        "judge-test",
        "--timeout",
        "0.5",
        "--no_progress",
        *extra,
    ]


def test_reference_flags_parse_with_their_defaults():
    args = build_parser().parse_args(
        ["--input_file", "a", "--output_file_rr", "b", "--file_refer", "c", "--api_key", "k"]
    )
    assert (args.judge, args.judge_model, args.concurrency, args.cache_file) == ("openai", None, 32, None)
    assert judge_class(args.judge).default_model == "gpt-4o"  # --judge_model defaults per judge
    assert args.api_key == "k"


def test_api_key_from_the_command_line_is_used_but_never_written(sample_files, tmp_path, judge_server, capsys, caplog):
    secret = "sk-secret-DO-NOT-LEAK-42"
    out = tmp_path / "run" / "val_rr.json"
    assert main(_args(sample_files, out, judge_server, "--api_key", secret)) == 0
    assert judge_server.authorizations == {f"Bearer {secret}"}  # it did reach the server

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"val_rr.json", "val_rr.txt", "val_rr.json.judge_cache.jsonl"}
    for path in written:
        assert secret not in path.read_text(), path
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err + caplog.text
    assert "SARR" in captured.out and "75.00" in captured.out  # the metrics table


def test_missing_api_key_is_a_one_line_error(sample_files, tmp_path, judge_server, capsys):
    assert main(_args(sample_files, tmp_path / "out.json", judge_server)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "OPENAI_API_KEY" in err and err.count("\n") == 1
    assert judge_server.requests == 0


def test_rejected_key_is_a_config_error_that_does_not_echo_the_key(
    sample_files, tmp_path, judge_server, capsys, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    judge_server.status_for_all = 401
    assert main(_args(sample_files, tmp_path / "out.json", judge_server)) == 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "sk-wrong-key-123" not in err
    assert not (tmp_path / "out.json").exists()


def test_missing_input_file_is_a_one_line_error(sample_files, tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert (
        main(
            [
                "--input_file",
                str(missing),
                "--output_file_rr",
                str(tmp_path / "o.json"),
                "--file_refer",
                str(sample_files[1]),
                "--judge",
                "keyword",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == f"error: {missing}: file not found\n"


def test_killed_run_resumes_with_no_duplicate_calls(sample_files, tmp_path, judge_server, monkeypatch):
    """SIGKILL eval_all.py while it waits on its 11th request; the rerun asks only for what it lacks."""
    out = tmp_path / "out.json"
    cache = tmp_path / "judge_cache.jsonl"
    judge_server.hold_at = 11
    env = dict(os.environ, OPENAI_API_KEY="sk-test", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "eval_all.py"),
            *_args(sample_files, out, judge_server, "--concurrency", "1", "--cache_file", str(cache)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert judge_server.held.wait(30), "the command never reached its 11th request"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    judge_server.release.set()
    answered_before_kill = sum(judge_server.served.values())
    kept = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(kept) == answered_before_kill > 0
    assert not out.exists()

    judge_server.hold_at = None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert main(_args(sample_files, out, judge_server, "--cache_file", str(cache))) == 0
    assert len(judge_server.served) == 36 and set(judge_server.served.values()) == {1}
    stats = json.loads(out.with_suffix(".txt").read_text())
    assert stats["stats_asr_rr"]["unsafe_count"] == 5 and stats["stats_asr_rr"]["sd_refuse_count"] == 3
    assert stats["cost"]["cache_hits"] == len(kept)


def test_stats_carry_intervals_degenerate_answers_and_provenance(sample_files, tmp_path, capsys):
    out = tmp_path / "val_rr.json"
    rc = main(["--input_file", str(sample_files[0]), "--output_file_rr", str(out), "--file_refer",
               str(sample_files[1]), "--judge", "keyword", "--no_progress"])
    assert rc == 0
    stats = json.loads(out.with_suffix(".txt").read_text())
    for metric, value in stats["summary"].items():
        ci = stats["ci"][metric]
        assert (value is None) == (ci is None), metric
        if ci is not None:
            assert ci[0] - 0.01 <= value <= ci[1] + 0.01, metric  # the summary is rounded
    answers = json.loads(Path(sample_files[0]).read_text())
    harmful = sum(len(r["unsafe_pairs"]) * 3 for r in answers)
    assert stats["degenerate"]["harmful"]["n"] == harmful
    prov = stats["provenance"]
    assert prov["code"]["commit"] and prov["packages"]["torch"] and len(prov["input_sha256"]) == 64
    assert "95% interval" in capsys.readouterr().out
