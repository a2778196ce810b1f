"""Bootstrap confidence intervals over records (safeeraser/eval/bootstrap.py)."""
import json
import math

import pytest

from safeeraser.eval.bootstrap import (CI, bootstrap_ci, combine_seeds, format_ci, judged_values,
                                       paired_bootstrap_diff, rate_cis)
from safeeraser.io import DataError


def _width(ci) -> float:
    return ci.high - ci.low


def test_constant_values_give_a_zero_width_interval():
    ci = bootstrap_ci([0.7] * 50)
    assert ci.low == ci.high
    assert ci.estimate == pytest.approx(0.7) and ci.low == pytest.approx(0.7)
    assert ci.n == 50


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
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)
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
    assert ci.low == ci.high == 0.5
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
    # per record (unsafe, judged) of 3 samples per pair; record 0's "GARBAGE text" is unknown
    assert values["ASR"] == [(2, 5), (2, 3), (1, 3)]
    assert values["SARR"] == [(1, 2), (1, 1), (1, 1)]
    assert values["GPT-Eval"][2] == (3.0, 3)  # the unknown score is left out
    cis = rate_cis(judged, n_resamples=500)
    assert list(cis) == ["ASR", "RR", "SARR", "ROUGE-L", "GPT-Eval"]
    for name, ci in cis.items():
        assert 100 * ci.estimate == pytest.approx(stats["summary"][name], abs=0.006)
        assert ci.low <= ci.estimate <= ci.high and ci.n == 3


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
    assert pooled.low == pooled.high == pytest.approx(1 / 3)
    # one seed: the plain paired bootstrap over records
    one = paired_seeds_diff([[(1, 3), (0, 3), (2, 3)]], [[(2, 3), (0, 3), (3, 3)]], seed=1)
    plain = paired_bootstrap_diff([(1, 3), (0, 3), (2, 3)], [(2, 3), (0, 3), (3, 3)], seed=1)
    assert one.estimate == pytest.approx(plain.estimate)


def test_a_mapping_is_refused_not_scored_by_its_keys():
    with pytest.raises(TypeError, match="got a mapping"):
        bootstrap_ci({1: 0.0, 2: 0.0, 3: 0.0})  # its keys would have been the values: mean 2
    assert bootstrap_ci([0.0, 0.0, 0.0]).estimate == 0.0
