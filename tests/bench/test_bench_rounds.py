"""Several rounds of the unlearning bench: each figure is the median over the rounds, the ways alternate
which runs first, and the per-round ratios are kept."""
from types import SimpleNamespace

from safeeraser.bench import command


def _result(label, sps, cpu, peak):
    method, way = label.split("/")
    return {"label": label, "method": method, "way": way, "samples_per_s": sps, "samples_per_cpu_s": cpu,
            "peak_mb": peak, "fused_forward": way == "ours", "share": {"forward": 0.5},
            "outside_forward_backward_share": 0.1, "tokens_per_s": sps * 100}


def test_rounds_alternate_and_give_medians(monkeypatch):
    calls = []
    speeds = {"gdpd/ours": iter([30.0, 45.0, 40.0]), "gdpd/reference": iter([15.0, 10.0, 20.0])}

    def fake_run(spec):
        calls.append(spec.label)
        v = next(speeds[spec.label])
        r = _result(spec.label, v, v * 1.1, 100.0 + len(calls))
        if len(calls) <= 2:
            r["first_round_only"] = 7.0  # e.g. the allocator-history peak, measured in the first round
        return r

    monkeypatch.setattr("safeeraser.bench.train_bench.run_in_subprocess", fake_run)
    args = SimpleNamespace(batch_size=None, effective_batch=16, warmup_steps=1, ways="ours,reference",
                           methods="gdpd", rounds=3, steps=2, gradient_checkpointing=False, peak_flops=1.0,
                           profile=False)
    assets = SimpleNamespace(device="cuda", shapes="full", to_dict=lambda: {})
    out = command.run_train(args, assets, threads=1)
    assert calls == ["gdpd/ours", "gdpd/reference", "gdpd/reference", "gdpd/ours", "gdpd/ours", "gdpd/reference"]
    assert out["gdpd/ours"]["samples_per_s"] == 40.0 and out["gdpd/reference"]["samples_per_s"] == 15.0
    assert out["gdpd/ours"]["peak_mb"] == 101.0  # measured once, in the first round
    assert out["gdpd/ours"]["first_round_only"] == 7.0
    assert [r["samples_per_s"] for r in out["gdpd/ours"]["rounds"]] == [30.0, 45.0, 40.0]
    assert command.round_ratios(out, "gdpd", "samples_per_s") == [2.0, 4.5, 2.0]
    rows = {r.key: r for r in command.train_rows(out, "cuda")}
    assert rows["train_gdpd_samples_per_s"].ratio == 40.0 / 15.0


def test_one_round_is_the_run_itself():
    run = _result("gdpd/ours", 3.0, 3.0, 1.0)
    assert command.median_result([run]) is run
    assert command.round_ratios({"gdpd/ours": run}, "gdpd") == []


def _side(tokens_per_s):
    return {"responses": 96, "new_tokens": 12288, "seconds": 12288 / tokens_per_s,
            "new_tokens_per_s": tokens_per_s, "new_tokens_per_cpu_s": tokens_per_s,
            "responses_per_s": tokens_per_s / 128, "responses_per_cpu_s": tokens_per_s / 128}


def test_inference_rounds_alternate_and_give_each_sides_median(monkeypatch):
    calls = []
    rates = iter([(9000.0, 800.0), (6000.0, 400.0), (8000.0, 500.0)])

    def fake_measure(assets, **kw):
        calls.append(kw["reference_first"])
        ours, ref = next(rates)
        return {"prompts": 32, "max_new_tokens": 128, "ours": _side(ours), "reference": _side(ref)}

    monkeypatch.setattr("safeeraser.bench.infer_bench.measure_inference", fake_measure)
    args = SimpleNamespace(rounds=3, prompts=32, max_new_tokens=128, infer_batch_size=32, reference_prompts=0,
                           seed=0, peak_flops=0.0)
    out = command.run_infer(args, assets=None)
    assert calls == [False, True, False]
    assert out["ours"]["new_tokens_per_s"] == 8000.0 and out["reference"]["new_tokens_per_s"] == 500.0
    assert out["prompts"] == 32
    assert command.infer_round_ratios(out) == [9000 / 800, 6000 / 400, 8000 / 500]
    rows = {r.key: r for r in command.infer_rows(out, "cpu")}
    assert rows["infer_new_tokens_per_s"].ratio == 8000.0 / 500.0
    one = {"ours": _side(1.0), "reference": _side(1.0)}
    assert command.median_sides([one]) is one
    assert command.infer_round_ratios(one) == []
