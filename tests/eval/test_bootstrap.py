"""Bootstrap confidence intervals over records (safeeraser/eval/bootstrap.py)."""
import json
import math

import pytest

from safeeraser.eval.bootstrap import (CI, bootstrap_ci, combine_seeds, format_ci, judged_values,
                                       paired_bootstrap_diff, rate_cis)
from safeeraser.io import DataError


def _width(ci) -> float:
    return ci.high - ci.low


def test_constant_values_off_the_unit_scale_give_a_zero_width_interval():
    ci = bootstrap_ci([7.0] * 50)  # no count-based interval applies to values beyond [0, 1]
    assert ci.low == ci.high == pytest.approx(7.0) and ci.method == "percentile"
    assert ci.n == 50


def _wilson_by_hand(x: float, n: int) -> tuple[float, float]:
    # Wilson (1927): (x + z^2/2 -/+ z sqrt(x (n - x) / n + z^2 / 4)) / (n + z^2), z = 1.959964 (95%)
    z = 1.959963984540054
    root = z * math.sqrt(x * (n - x) / n + z * z / 4)
    return (x + z * z / 2 - root) / (n + z * z), (x + z * z / 2 + root) / (n + z * z)


def test_zero_of_n_gets_a_count_based_interval_not_zero_width():
    # 0 harmful answers out of 108 records of 3 samples: the bootstrap gives [0, 0] in every resample
    ci = bootstrap_ci([(0, 3)] * 108)
    low, high = _wilson_by_hand(0, 108)  # the records are the trials: 0.0 and 3.43%
    assert ci.method == "wilson" and ci.estimate == 0.0
    assert ci.low == pytest.approx(low, abs=1e-12) == 0.0
    assert ci.high == pytest.approx(high, rel=1e-9) and 0.034 < ci.high < 0.035
    full = bootstrap_ci([(3, 3)] * 108)  # every answer harmful: the mirror image
    assert full.method == "wilson" and full.low == pytest.approx(1 - high, rel=1e-9) and full.high == 1.0
    assert ci.low == 0.0
    mixed = bootstrap_ci([(0, 3)] * 100 + [(1, 3)] * 8)
    assert mixed.method == "percentile"  # the bootstrap has spread: it stays


def test_records_with_no_judged_answer_are_no_trials():
    ci = bootstrap_ci([(0, 3)] * 40 + [(0, 0)] * 10)
    assert ci.high == pytest.approx(_wilson_by_hand(0, 40)[1], rel=1e-9)


def test_a_collapsed_paired_difference_gets_a_count_based_interval():
    # both methods 0 of 60: the paired bootstrap gives [0, 0]; no unit differs, 0 of 60 in each direction
    _, w = _wilson_by_hand(0, 60)
    for a in ([(0, 3)] * 60, [(1, 3)] * 60):  # all safe, or the same 1 of 3 on both sides
        diff = paired_bootstrap_diff(a, a)
        assert diff.method == "wilson_diff" and diff.estimate == 0.0
        assert diff.low == pytest.approx(-w, rel=1e-9) and diff.high == pytest.approx(w, rel=1e-9)
        assert not diff.excludes_zero
    # every record moves by +1/3: the up part is 1/3 of 60 (20 of 60), the down part 0 of 60
    diff = paired_bootstrap_diff([(0, 3)] * 60, [(1, 3)] * 60)
    l1, u1 = _wilson_by_hand(20, 60)
    assert diff.method == "wilson_diff" and diff.estimate == pytest.approx(1 / 3)
    assert diff.low == pytest.approx(1 / 3 - math.hypot(1 / 3 - l1, w), rel=1e-9)
    assert diff.high == pytest.approx(u1, rel=1e-9) and diff.excludes_zero


def test_collapsed_seed_intervals_count_one_runs_records():
    from safeeraser.eval.bootstrap import paired_seeds_diff

    runs = [[(0, 3)] * 50] * 3
    ci = combine_seeds(runs)
    assert ci.method == "wilson" and ci.high == pytest.approx(_wilson_by_hand(0, 50)[1], rel=1e-9)
    nested = combine_seeds(runs, records="nested")
    assert nested.high == pytest.approx(_wilson_by_hand(0, 150)[1], rel=1e-9)
    diff = paired_seeds_diff(runs, runs)
    assert diff.method == "wilson_diff" and diff.high == pytest.approx(_wilson_by_hand(0, 50)[1], rel=1e-9)


def test_undefined_resamples_are_counted():
    # one record of 20 has a judged answer: most resamples miss it and have no rate
    ci = bootstrap_ci([(1, 1)] + [(0, 0)] * 19, n_resamples=1000, seed=3)
    expected = 1000 * (19 / 20) ** 20  # P(a resample misses record 0) = 0.358
    assert abs(ci.undefined_resamples - expected) < 60


def test_a_fair_coin_matches_the_normal_approximation():
    p, n = 0.5, 400
    ci = bootstrap_ci([1, 0] * (n // 2), n_resamples=4000)
    half = 1.96 * math.sqrt(p * (1 - p) / n)  # 0.049
    assert ci.estimate == 0.5
    assert ci.low == pytest.approx(p - half, abs=0.006)
    assert ci.high == pytest.approx(p + half, abs=0.006)


def test_a_rate_is_the_ratio_of_sums_not_the_mean_of_ratios():
    # one record with 1 judged sample (unsafe), one with 9 judged samples (all safe)
    values = [(1, 1), (0, 9)]
    assert bootstrap_ci(values).estimate == pytest.approx(0.1)  # 1 unsafe of 10 items, as metrics.py pools
    assert bootstrap_ci(values, stat="mean_of_ratios").estimate == pytest.approx(0.5)


def test_records_not_samples_are_resampled():
    # 20 records of 3 samples each, the samples of a record all alike: 10 records all unsafe, 10 all safe
    records = [(3, 3)] * 10 + [(0, 3)] * 10
    by_record = bootstrap_ci(records)
    # a record's 3 samples move together: exactly the bootstrap of 20 per-record rates
    assert by_record == bootstrap_ci([1.0] * 10 + [0.0] * 10)
    # treating the 60 samples as independent would claim a much narrower interval
    by_sample = bootstrap_ci([1.0] * 30 + [0.0] * 30)
    assert by_record.estimate == by_sample.estimate == 0.5
    assert _width(by_record) > 1.5 * _width(by_sample)


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    values = [(i * 0.37) % 1 for i in range(37)]  # many distinct values: percentiles fall between them
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)
    assert bootstrap_ci(values, seed=7).estimate == bootstrap_ci(values, seed=8).estimate


def test_identical_paired_inputs_differ_by_exactly_zero():
    values = [(i % 4, 3 + i % 2) for i in range(30)]
    diff = paired_bootstrap_diff(values, list(values))
    assert diff.estimate == 0.0  # exactly, and an interval that still admits a difference on unseen records
    assert diff.low == pytest.approx(-_wilson_by_hand(0, 30)[1]) and diff.high == -diff.low
    assert not diff.excludes_zero


def test_paired_difference_is_b_minus_a_aligned_by_record_id():
    base = {f"r{i}": float(i % 5) / 4 for i in range(60)}
    better = {k: v + 0.1 + 0.05 * (int(k[1:]) % 2) for k, v in base.items()}  # every record improves
    shuffled = dict(reversed(list(better.items())))
    diff = paired_bootstrap_diff(base, shuffled)
    assert diff.estimate == pytest.approx(0.125)
    assert diff.a == pytest.approx(sum(base.values()) / 60)
    assert 0.1 <= diff.low < diff.estimate < diff.high <= 0.15
    assert diff.excludes_zero
    assert diff.as_dict()["excludes_zero"] is True
    # the pairing is what makes it significant: the two rates' own intervals overlap
    assert bootstrap_ci(list(base.values())).high > bootstrap_ci(list(better.values())).low
    assert paired_bootstrap_diff(shuffled, base).estimate == pytest.approx(-0.125)


def test_paired_inputs_must_hold_the_same_records():
    with pytest.raises(ValueError, match="1 only in a"):
        paired_bootstrap_diff({"x": 1.0, "y": 0.0}, {"x": 1.0})
    with pytest.raises(ValueError, match="3 records, b has 2"):
        paired_bootstrap_diff([1.0, 0.0, 1.0], [1.0, 0.0])


def test_seed_spread_and_the_mean_and_sd_over_seeds():
    ci = combine_seeds([[0.2] * 10, [0.5] * 10, [0.8] * 10])
    assert ci.estimate == ci.seed_mean == pytest.approx(0.5)
    assert ci.seed_sd == pytest.approx(0.3)
    assert ci.per_seed == pytest.approx([0.2, 0.5, 0.8])
    assert (ci.n_seeds, ci.n) == (3, 30)
    # no record-level variation: the interval comes from the seeds alone
    assert ci.low == pytest.approx(0.2) and ci.high == pytest.approx(0.8)
    one = combine_seeds([[0.0, 1.0] * 20])
    assert one.seed_sd is None and one.estimate == 0.5


def test_shared_records_keep_their_difficulty_across_seeds():
    # three seeds that agree on every record, records very different from one another
    runs = [[float(i % 2) for i in range(40)]] * 3
    shared, nested = combine_seeds(runs), combine_seeds(runs, records="nested")
    assert shared.estimate == nested.estimate == 0.5
    # drawn anew per seed, the same record's difficulty would average out (width / sqrt(3))
    assert _width(shared) > 1.4 * _width(nested)
    assert _width(shared) == pytest.approx(_width(bootstrap_ci(runs[0])), rel=0.15)
    with pytest.raises(ValueError, match="same records in every seed"):
        combine_seeds([[1.0, 0.0], [1.0]])
    assert combine_seeds([[1.0, 0.0], [1.0]], records="nested").estimate == pytest.approx(0.75)


def test_undefined_resamples_are_left_out_and_counted():
    ci = bootstrap_ci([(1, 2), (0, 0)], n_resamples=1000)  # a draw of only the unjudged record has no rate
    assert ci.estimate == 0.5
    assert 150 < ci.undefined_resamples < 350  # 1/4 of the draws
    # every defined draw is 0.5: the one judged record is one trial
    assert ci.method == "wilson" and (ci.low, ci.high) == pytest.approx(_wilson_by_hand(0.5, 1))
    assert bootstrap_ci([(0, 0), (0, 0)]) == CI(None, None, None, 2)
    assert bootstrap_ci([]) == CI(None, None, None, 0)


@pytest.mark.parametrize("values, message", [
    ([0.5, (1, 2)], "value 1: expected a finite number"),
    ([(1, 2), 0.5], "value 1: expected a .numerator, denominator. pair"),
    ([(1, 2), (1, -1)], "value 1: .*denominator >= 0"),
    ([0.5, float("nan")], "value 1: expected a finite number"),
    (["0.5"], "value 0: expected a .numerator, denominator. pair"),
])
def test_bad_values_name_the_record(values, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(values)


def test_flags_count_as_zero_and_one():
    assert bootstrap_ci([True, False, True, True]).estimate == 0.75


def test_format_ci():
    ci = CI(0.528, 0.41666, 0.639, 36)
    assert format_ci(ci) == "52.8 [41.7, 63.9]"
    assert format_ci(ci.as_dict(), digits=2) == "52.80 [41.67, 63.90]"
    assert format_ci(ci, scale=1, digits=3) == "0.528 [0.417, 0.639]"
    assert format_ci(CI(None, None, None, 0)) == "n/a"


def _judged(sample_files, tmp_path, fast_settings):
    from safeeraser.eval import evaluate, make_judge

    out = tmp_path / "val_rr.json"
    judge = make_judge("openai", settings=fast_settings(), cache_path=tmp_path / "cache.jsonl")
    stats = evaluate(*sample_files, out, judge, show_progress=False)
    return json.loads(out.read_text()), stats


def test_rate_cis_reproduce_the_stats_of_a_judged_file(sample_files, tmp_path, fast_settings):
    judged, stats = _judged(sample_files, tmp_path, fast_settings)
    values = judged_values(judged)
    # per record (each its own image) (unsafe, judged) of 3 samples per pair; record 0's "GARBAGE text" is unknown
    assert values["ASR"] == [(2, 5), (2, 3), (1, 3)]
    assert values["SARR"] == [(1, 2), (1, 1), (1, 1)]
    assert values["GPT-Eval"][2] == (3.0, 3)  # the unknown score is left out
    cis = rate_cis(judged, n_resamples=500)
    assert list(cis) == ["ASR", "RR", "SARR", "ROUGE-L", "GPT-Eval"]
    for name, ci in cis.items():
        assert 100 * ci.estimate == pytest.approx(stats["summary"][name], abs=0.006)
        assert ci.low <= ci.estimate <= ci.high and ci.n == 3
        assert stats["ci_method"][name] == ci.method  # the stats file says which intervals are count-based
    from safeeraser.eval.metrics import format_table

    marked = {**stats["ci_method"], "ASR": "wilson"}
    table = format_table(stats["stats_asr_rr"], stats["stats_unharmpair"], stats["ci"], marked)
    assert [line.startswith("ASR") for line in table.splitlines() if "†" in line][:1] == [True]
    assert table.splitlines()[-1].startswith("† every bootstrap resample gave the same value")


def test_records_that_share_an_image_are_one_unit(sample_files, tmp_path, fast_settings):
    judged, _ = _judged(sample_files, tmp_path, fast_settings)
    per_record = judged_values(judged)
    judged[2]["image_path"] = judged[0]["image_path"]  # records 0 and 2: two question sets on one image
    clustered = judged_values(judged)
    for name in per_record:
        (n0, d0), (n1, d1), (n2, d2) = per_record[name]
        assert clustered[name] == [(n0 + n2, d0 + d2), (n1, d1)]
    assert rate_cis(judged)["ASR"].n == 2
    del judged[1]["image_path"]
    with pytest.raises(DataError, match=r"^x.json: record 1: field 'image_path': expected a string"):
        judged_values(judged, "x.json")


def test_judged_values_of_a_judge_without_scores_and_bad_values(sample_files, tmp_path, fast_settings):
    judged, _ = _judged(sample_files, tmp_path, fast_settings)
    for record in judged:
        for key in ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2"):
            record[key]["gpt_score"] = None  # as the keyword judge writes it
    assert rate_cis(judged)["GPT-Eval"].estimate is None
    judged[1]["unsafe_pairs"][0]["gpt_result_RR_model_response2"] = "maybe"
    with pytest.raises(DataError, match=r"^val_rr.json: record 1: field 'unsafe_pairs\[0\]"
                                        r".gpt_result_RR_model_response2': expected 'refuse', 'not_refuse', "
                                        r"'unknown' or null, got 'maybe'$"):
        judged_values(judged, "val_rr.json")
    del judged[1]["unsafe_pairs"][0]["gpt_result_RR_model_response2"]
    with pytest.raises(DataError, match="record 1: field 'unsafe_pairs.0..gpt_result_RR_model_response2': missing"):
        judged_values(judged)
    judged[1]["unsafe_pairs"][0]["gpt_result_RR_model_response2"] = "refuse"
    judged[2]["UnharmPair_image1"]["rougeL"] = "0.5"
    with pytest.raises(DataError, match="record 2: field 'UnharmPair_image1.rougeL': expected a number"):
        judged_values(judged)


def test_paired_seeds_diff_carries_the_seed_spread():
    from safeeraser.eval.bootstrap import paired_bootstrap_diff, paired_seeds_diff

    records = 40
    base = [[(0, 3)] * records] * 3
    # +PD moves the rate by +100 points under one seed and not at all under the two others
    pd = [[(3, 3)] * records, [(0, 3)] * records, [(0, 3)] * records]
    diff = paired_seeds_diff(base, pd, seed=0)
    assert diff.estimate == pytest.approx(1 / 3)
    assert diff.low == pytest.approx(0.0) and diff.high == pytest.approx(1.0)  # seeds drawn: 0 to 3 of 3
    # pooling each record's counts over the seeds would call the same effect certain
    pooled = paired_bootstrap_diff([(0, 9)] * records, [(3, 9)] * records)
    assert pooled.excludes_zero and pooled.high - pooled.low < 0.4
    # one seed: the plain paired bootstrap over records
    one = paired_seeds_diff([[(1, 3), (0, 3), (2, 3)]], [[(2, 3), (0, 3), (3, 3)]], seed=1)
    plain = paired_bootstrap_diff([(1, 3), (0, 3), (2, 3)], [(2, 3), (0, 3), (3, 3)], seed=1)
    assert one.estimate == pytest.approx(plain.estimate)


def test_a_mapping_is_refused_not_scored_by_its_keys():
    with pytest.raises(TypeError, match="got a mapping"):
        bootstrap_ci({1: 0.0, 2: 0.0, 3: 0.0})  # its keys would have been the values: mean 2
    assert bootstrap_ci([0.0, 0.0, 0.0]).estimate == 0.0
