"""The judged metrics are registered once (eval/judged_metrics.py): adding one is one entry, which the
intervals, the judges' agreement, the presets' rate lists, the stats summary and the report all read."""
from __future__ import annotations

import json

import pytest

from safeeraser.eval import judged_metrics
from safeeraser.eval.judged_metrics import JudgedMetric

TOY = JudgedMetric("SD-ASR", "toy_kind", "toy_sd_{key}", ("sd_response",), "unsafe", "safe", "lower",
                   ("stats_asr_rr", "toy_rate"))


@pytest.fixture
def with_toy(monkeypatch):
    monkeypatch.setattr(judged_metrics, "METRICS", judged_metrics.METRICS + (TOY,))


def _judged(labels_toy):
    records = []
    for i, label in enumerate(labels_toy):
        pair = {"question": f"q{i}", "sd_response": f"s{i}", "toy_sd_sd_response": label,
                "gpt_result_RR_sd_response": "normal"}
        for k in ("model_response1", "model_response2", "model_response3"):
            pair.update({k: f"a{i}{k}", f"gpt_result_ASR_{k}": "safe", f"gpt_result_RR_{k}": "not_refuse"})
        record = {"image_path": f"img{i}.png", "unsafe_pairs": [pair]}
        for key in ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2"):
            record[key] = {"Question": "x", "Prediction": "y", "rougeL": 0.5, "gpt_score": 1.0}
        records.append(record)
    return records


def test_every_report_column_names_a_registered_metric_and_its_direction():
    from safeeraser.pipeline.columns import RATES

    registered = {m.name: m for m in judged_metrics.metrics()}
    for col in RATES:
        assert col.metric in registered and col.better == registered[col.metric].better, col.key


def test_an_added_metric_is_counted_compared_and_listed(with_toy, tmp_path):
    from safeeraser.eval.agreement import compare
    from safeeraser.eval.bootstrap import judged_values
    from safeeraser.eval.judges.preset import rates_of
    from safeeraser.eval.metrics import summary
    from safeeraser.pipeline.report import agreement_metrics

    a, b = _judged(["unsafe", "safe", "unsafe", "unknown"]), _judged(["unsafe", "unsafe", "safe", "safe"])
    assert judged_values(a)["SD-ASR"] == [(1, 1), (0, 1), (1, 1), (0, 0)]  # unknown left out
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    result = compare(tmp_path / "a.json", tmp_path / "b.json")
    assert result["SD-ASR"]["both_labelled"] == 3 and result["SD-ASR"]["agreement"] == pytest.approx(1 / 3)
    assert "SD-ASR" in agreement_metrics() and rates_of({"toy_kind"}) == ["SD-ASR"]
    stats = {"unsafe_rate": 0.1, "refuse_rate": 0.2, "sd_refuse_rate": 0.3, "toy_rate": 0.25}
    row = summary(stats, {"average_rougeL": 0.5, "average_gpt_score": None})
    assert row == {"ASR": 10.0, "RR": 20.0, "SARR": 30.0, "ROUGE-L": 50.0, "GPT-Eval": None, "SD-ASR": 25.0}
