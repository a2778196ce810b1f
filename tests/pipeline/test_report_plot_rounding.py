"""The report's plot takes a row whose value is rounded to two decimals and whose bootstrap interval has
collapsed to the unrounded point (every resample equal): no negative error bar, a figure is written."""
from safeeraser.pipeline.report import plot_report


def test_a_collapsed_interval_beside_a_rounded_value_plots(tmp_path):
    third = 250 / 3  # 83.333...: the row shows 83.33, its interval stays at the exact point
    rows = [{"method": "vanilla", "eff_asr": 83.33, "ci": {"eff_asr": [third, third]}},
            {"method": "ga", "eff_asr": 16.67, "ci": {"eff_asr": [100 / 6, 100 / 6]}}]
    out = plot_report(rows, tmp_path / "report.png", "t")
    assert out.is_file() and out.stat().st_size > 0
