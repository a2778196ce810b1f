"""The report marks count-based intervals and lists resamples left out of an interval."""
from __future__ import annotations

from safeeraser.pipeline.columns import COLUMNS, RATES
from safeeraser.pipeline.report import markdown_table, pd_table, write_report


def _row(method: str, notes: dict) -> dict:
    row = {"method": method, **{c.key: 0.0 for c in COLUMNS}}
    row["ci"] = {c.key: [0.0, 3.4] for c in RATES}
    row["ci_notes"] = notes
    return row


def _effect(method: str) -> dict:
    cell = {"estimate": 0.0, "low": -0.034, "high": 0.034, "excludes_zero": False, "method": "percentile",
            "undefined_resamples": 0}
    effect = {"method": "ga", "with_pd": "gapd", **{c.key: dict(cell) for c in RATES}}
    effect["eff_asr"] = {**cell, "method": method, "undefined_resamples": 7}
    return effect


def test_count_based_intervals_are_marked_and_explained(tmp_path):
    counted = {"eff_asr": {"method": "wilson", "undefined_resamples": 0, "resamples": 2000},
               "sarr": {"method": "percentile", "undefined_resamples": 12, "resamples": 2000}}
    rows = [_row("ga", counted), _row("gapd", {})]
    table = markdown_table(rows).splitlines()
    assert table[2].count("†") == 1 and "[0.0, 3.4]†" in table[2]
    assert "†" not in table[3]
    assert "[-3.4, +3.4]†" in pd_table([_effect("wilson_diff")]) and "†" not in pd_table([_effect("percentile")])
    write_report(rows, tmp_path, "t", {"judge": {"name": "keyword"}}, pd=[_effect("wilson_diff")])
    md = (tmp_path / "report.md").read_text()
    assert "†: every resample gave the same value" in md
    assert "ga sarr: 12 of 2000" in md and "ga → gapd eff_asr: 7" in md
    write_report([_row("ga", {})], tmp_path, "t", {"judge": {"name": "keyword"}})
    md = (tmp_path / "report.md").read_text()
    assert "†" not in md and "left out" not in md
