"""The paper grid's predicted wall time: per-unit costs from a measured JSON or from FLOP counts, and the
schedule on the node's GPUs, each checked against arithmetic done by hand."""
from __future__ import annotations

import json

import pytest

from safeeraser.bench import grid_cost
from safeeraser.bench.grid_cost import Setting, costs_from_flops, costs_from_json, lpt, predict

# A small grid whose arithmetic is done by hand below.
SMALL = Setting(methods=("gdpd", "klpd", "ga"), vanilla=True, epochs=2, effective_batch=4, samples=3,
                answer_tokens=10, train_records=10, val_records=5, pairs_per_record=2, unharm_per_record=4,
                image_tokens=90, view_text_tokens=10, prompt_text_tokens=10, specificity={"b": (100, 10, 5)},
                gpus=2, gpus_per_run=1, judge_latency_s=2.0)


def _check_json() -> dict:
    """The figures of a gpu_check JSON that the prediction reads (made up, round)."""
    return {"schema": "safeeraser-gpu-check/1", "dry": False, "models": {"llava-7b-random": {
        "train": {"gdpd": {"tokens_per_s": 1000.0, "effective_batch": 4, "peak_mb": 100.0},
                  "klpd": {"tokens_per_s": 800.0, "effective_batch": 4, "peak_mb": 105.0}},
        "infer": {"ours_new_tokens_per_s": 2000.0, "prompts": 32, "max_new_tokens": 128}}},
        "judge": {"labels_per_s": 100.0, "server_delay_s": 0.2}}


def test_costs_from_a_measured_json():
    c = costs_from_json(_check_json(), SMALL)
    assert c.trained_token_s == pytest.approx(0.001)  # 1 / 1000 tokens/s
    # klpd adds a frozen forward over one of its 3 views: 3 * (1/800 - 1/1000) per token of that view
    assert c.reference_token_s == pytest.approx(0.00075)
    assert c.new_token_s == pytest.approx(0.0005) and c.prefill_token_s == pytest.approx(0.0005)
    assert c.judge_labels_per_s == pytest.approx(10.0)  # 100/s at 0.2 s per answer, scaled to 2 s
    assert c.peak_mb == 105.0


def test_prediction_arithmetic_by_hand():
    p = predict(costs_from_json(_check_json(), SMALL), SMALL)
    # forget set 10 records x 2 = 20 examples: ceil(20 / 4) = 5 steps a epoch, 2 epochs
    assert p["training"]["steps_per_run"] == 10
    # a step: 4 examples x 100 tokens a view; gdpd 3 trained views: 400 x 0.003 = 1.2 s; klpd adds a
    # frozen view: 400 x 0.00375 = 1.5 s; ga one view: 0.4 s. Runs: 12, 15, 4 s.
    per_run = {m: h * 3600 for m, h in p["training"]["per_method_h"].items()}
    assert per_run == pytest.approx({"gdpd": 12.0, "klpd": 15.0, "ga": 4.0})
    # 2 GPUs, longest first: klpd 15 | gdpd 12 + ga 4 = 16
    assert p["training"]["wall_h"] * 3600 == pytest.approx(16.0)
    # 4 models (3 + vanilla). Answers a record: 2 x (3 + 1) + 4 = 12, 10 tokens each at 0.5 ms:
    # train split 10 x 12 x 10 x 0.0005 = 0.6 s, val 0.3 s; specificity 100 x (100 x 0.0005 + 5 x 0.0005)
    # = 5.25 s. 4 x 6.15 = 24.6 s of jobs, balanced on 2 GPUs: 12.3 s.
    assert p["evaluation"]["gpu_h"]["inference"] * 3600 == pytest.approx(3.6)
    assert p["evaluation"]["gpu_h"]["specificity"] * 3600 == pytest.approx(21.0)
    assert p["evaluation"]["jobs"] == 12 and p["evaluation"]["wall_h"] * 3600 == pytest.approx(12.3)
    # labels a record: 2 x 7 + 4 = 18; (10 + 5) x 18 x 4 models = 1080 at 10/s = 108 s, longer than the
    # GPUs' 12.3 s of evaluation: total 16 + 108 s
    assert p["judging"]["labels"] == 1080 and p["judging"]["h"] * 3600 == pytest.approx(108.0)
    assert p["total_h"] * 3600 == pytest.approx(124.0)
    assert p["dominant"] == "judging"
    text = grid_cost.format_prediction(p)
    assert "2 GPUs" in text and "forget set 20 examples" in text and "(measured)" in text


def test_what_dominates_follows_the_longest_stage():
    fast = Setting(**{**SMALL.__dict__, "judge_latency_s": 0.02})  # 1000 labels/s: 1.08 s of judging
    p = predict(costs_from_json(_check_json(), fast), fast)
    assert p["total_h"] * 3600 == pytest.approx(16.0 + 12.3) and p["dominant"] == "training"
    # 10x the specificity questions: 52.5 s a model; 4 x (52.5 + 0.9) = 213.6 s of jobs, 106.8 s on 2 GPUs
    big = Setting(**{**fast.__dict__, "specificity": {"b": (1000, 10, 5)}})
    p = predict(costs_from_json(_check_json(), big), big)
    assert p["total_h"] * 3600 == pytest.approx(16.0 + 106.8)
    assert p["dominant"].startswith("evaluation on the GPUs (specificity")


def test_costs_from_flop_counts_by_hand():
    shape = {"text": 100, "vision": 10, "projector": 0, "layers": 1, "hidden": 1, "trainable": 5}
    s = Setting(image_tokens=2, view_text_tokens=2, prompt_text_tokens=2, answer_tokens=4, samples=1)
    c = costs_from_flops(s, train_mfu=0.5, infer_mfu=0.25, peak=1000.0, shape=shape)
    # n = 4 tokens: text 2 x 100 + 4 x 1 x 1 x 4 = 216 per token, image 2 x 10 x 2 / 4 = 10 per token
    # trained: 2 x 216 + 10 + 2 x 5 = 452, at 500 FLOP/s; a frozen forward 226
    assert c.trained_token_s == pytest.approx(452 / 500)
    assert c.reference_token_s == pytest.approx(226 / 500) and c.prefill_token_s == pytest.approx(226 / 500)
    # a new token: 2 x 100 + 4 x (4 + 4 / 2) = 224, plus its prompt's forward shared by 1 x 4 answer
    # tokens: 226 x 4 / 4 = 226; 450 at 250 FLOP/s
    assert c.new_token_s == pytest.approx(450 / 250)
    assert c.judge_labels_per_s == pytest.approx(32 / 2.0)


def test_longest_first_schedule():
    assert lpt([3, 3, 2, 2, 2], 2) == 7  # 3+2+2 | 3+2 (the optimum is 6: LPT is a heuristic, within 4/3)
    assert lpt([5], 8) == 5 and lpt([], 3) == 0


def test_a_dry_run_json_is_labelled_a_demonstration():
    doc = _check_json()
    doc["dry"] = True
    assert "DRY RUN" in costs_from_json(doc, SMALL).source


def test_cli_reads_a_json_and_counts_the_splits(tmp_path, capsys, mini_dir):
    src = tmp_path / "check.json"
    src.write_text(json.dumps(_check_json()))
    out = tmp_path / "pred.json"
    rc = grid_cost.main([str(src), "--train_file", str(mini_dir / "all_train.json"),
                         "--val_file", str(mini_dir / "all_val.json"), "--json", str(out)])
    assert rc == 0
    pred = json.loads(out.read_text())
    from safeeraser.data.records import load_benchmark

    train = load_benchmark(str(mini_dir / "all_train.json"), check_images=False)
    pairs = sum(len(r.unsafe_pairs) for r in train)
    assert f"forget set {pairs:,} examples" in " ".join(pred["assumptions"])
    assert "counted in" in capsys.readouterr().out


def test_cli_errors_name_the_file(tmp_path, capsys):
    bad = tmp_path / "nope.json"
    assert grid_cost.main([str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text("{}")
    assert grid_cost.main([str(other)]) == 2
    assert "neither a gpu_check JSON" in capsys.readouterr().err


def test_bench_predict_grid_measures_nothing(capsys):
    from safeeraser.bench.command import main

    assert main(["--predict_grid", "flops"]) == 0
    out = capsys.readouterr().out
    assert "paper grid on one 8-GPU node" in out and "nothing measured" in out and "ASSUMED" in out
