"""`safeeraser compare` and `safeeraser run --compare`: which rows and cells of two reports differ, by how much."""
from __future__ import annotations

import copy
import json

import pytest

from safeeraser.cli import main
from safeeraser.pipeline.compare import compare_reports


def _report() -> dict:
    def row(m, asr):
        return {"method": m, "eff_asr": asr, "rouge_l": 99.7, "ci": {"eff_asr": [asr - 5, asr + 5]},
                "degenerate": {"val": {"harmful": {"n": 108, "rate": 0.0}}}}

    return {"rows": [row("vanilla", 100.0), row("ga", 20.8), row("gapd", 0.0)],
            "pd_effects": [{"method": "ga", "with_pd": "gapd", "sarr": {"estimate": -72.2, "excludes_zero": True}}],
            "provenance": {"code": {"commit": "abc"}}, "seconds": 400.0}


def test_equal_reports_have_no_difference_whatever_their_run_facts():
    fresh = _report()
    fresh["provenance"], fresh["seconds"] = {"code": {"commit": "def"}}, 12.0  # when and by what: not the table
    assert compare_reports(_report(), fresh) == []


def test_each_differing_cell_is_named_with_both_values_and_the_change():
    fresh = _report()
    fresh["rows"][1]["eff_asr"] = 97.7
    fresh["rows"][1]["ci"]["eff_asr"][1] = 100.0
    fresh["pd_effects"][0]["sarr"]["excludes_zero"] = False
    diffs = compare_reports(_report(), fresh)
    assert [(d.section, d.row, d.cell) for d in diffs] == [
        ("rows", "ga", "eff_asr"), ("rows", "ga", "ci.eff_asr[1]"), ("pd_effects", "ga -> gapd", "sarr.excludes_zero")]
    assert diffs[0].reference == 20.8 and diffs[0].fresh == 97.7 and diffs[0].delta == pytest.approx(76.9)
    assert diffs[0].line() == "rows ga eff_asr: 20.8 -> 97.7 (+76.9)"
    assert diffs[2].delta is None and diffs[2].line().endswith("true -> false")


def test_rows_and_cells_on_one_side_only_and_the_tolerance():
    fresh = _report()
    del fresh["rows"][2]  # gapd not run
    fresh["rows"].append({"method": "npo", "eff_asr": 1.0})
    del fresh["rows"][0]["rouge_l"]
    fresh["rows"][1]["rouge_l"] = 99.7 + 1e-9
    diffs = compare_reports(_report(), fresh)
    lines = [d.line() for d in diffs]
    assert "rows vanilla rouge_l: 99.7 -> missing" in lines
    assert "rows gapd: only in the reference report" in lines and "rows npo: only in the fresh report" in lines
    assert any(d.cell == "rouge_l" and d.row == "ga" for d in diffs)  # exact by default
    assert not any(d.cell == "rouge_l" and d.row == "ga" for d in compare_reports(_report(), fresh, tol=1e-6))


def test_the_command_prints_the_differences_and_exits_1(tmp_path, capsys):
    ref, fresh = tmp_path / "ref.json", tmp_path / "new.json"
    ref.write_text(json.dumps(_report()))
    fresh.write_text(json.dumps(_report()))
    assert main(["compare", str(ref), str(fresh)]) == 0
    assert "the reports agree: 3 rows and 1 PD effects" in capsys.readouterr().out
    changed = _report()
    changed["rows"][1]["eff_asr"] = 97.7
    fresh.write_text(json.dumps(changed))
    assert main(["compare", str(ref), str(fresh)]) == 1
    out = capsys.readouterr().out
    assert "the reports differ: 1 of 3 rows and 0 PD effects, 1 cells" in out and "ga eff_asr: 20.8 -> 97.7" in out
    assert main(["compare", str(ref), str(fresh), "--tol", "100"]) == 0


def test_a_file_that_is_not_a_report_is_one_error_naming_it(tmp_path, capsys):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps(_report()))
    bad = tmp_path / "bad.json"
    bad.write_text("{\"rows\": 3}")
    assert main(["compare", str(ref), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: not a report") and err.count("\n") == 1
    assert main(["compare", str(ref), str(tmp_path / "none.json")]) == 2
    assert "none.json: cannot read the report" in capsys.readouterr().err


def test_run_compare_checks_the_report_it_wrote(tmp_path, monkeypatch, capsys):
    import safeeraser.pipeline.experiment as experiment

    written = tmp_path / "report.json"
    fresh = copy.deepcopy(_report())
    fresh["rows"][2]["eff_asr"] = 3.0
    written.write_text(json.dumps(fresh))
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps(_report()))

    class Ran:
        executed, report_path = ["forget:ga"], written

        def table(self, rows):
            return "(the table)"

    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: (fresh["rows"], Ran()))
    assert main(["run", "--config", "mini.yaml", "--compare", str(ref)]) == 1
    out = capsys.readouterr().out
    assert f"compared with {ref}" in out and "rows gapd eff_asr: 0.0 -> 3.0 (+3)" in out
