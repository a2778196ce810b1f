"""Percentile-bootstrap confidence intervals for the benchmark's rates, over IMAGES (or records).

A record's answers are not independent draws: its three samples (model_response1..3) answer the same
question on the same image, and its several questions are about one image, so they tend to agree.
Resampling samples would treat correlated answers as independent ones and give intervals that are too
narrow. Every function here resamples whole units, and a unit's answers travel together: judged_values
makes one unit per image (records that share an image are one cluster), the unit the benchmark sampled.

Where the bootstrap collapses (every resample gives the same value: 0 harmful answers out of 108, or
every answer refused), its interval [0.0, 0.0] would claim a certainty the data cannot give. There the
interval is a count-based one instead: Wilson's score interval with the units as the trials (a unit
counts as one trial, which is conservative when its answers agree). A paired difference collapses when
every unit differs by the same d; its interval is Newcombe's square-and-add of the Wilson intervals of
the differences' positive and negative parts (d+ = max(d, 0) and d- = max(-d, 0) per unit, d = d+ - d-;
one of them is 0 in every unit, so the sum of their variances is the difference's). Two methods that
agree on every unit get [-w, +w], w the Wilson upper bound of 0 of n, not [0, 0]. CI.method says which.

Values are one entry per record, either
  - a float (a per-record score: ROUGE-L, GPT score), the statistic being their mean; or
  - a (numerator, denominator) pair (a rate over the record's items: (unsafe samples, judged samples)),
    the statistic being the ratio of sums sum(num) / sum(den): exactly how metrics.py pools ASR, RR and
    SARR over all items. stat="mean_of_ratios" averages the per-record ratios instead.

judged_values() turns evaluate's judged JSON into these per-record values for ASR, RR, SARR, ROUGE-L and
GPT-Eval, so that rate_cis() reproduces the stats file's rates as its estimates, each with its interval.

The interval is the percentile interval of the bootstrap distribution; the estimate is the statistic
on the full data (not the bootstrap mean). Everything is deterministic for a given seed (numpy's PCG64).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import numpy as np

from safeeraser.eval import judged_metrics
from safeeraser.eval.judges.base import UNKNOWN
from safeeraser.io import DataError

STATS = ("mean", "mean_of_ratios")
PERCENTILE, WILSON, WILSON_DIFF = "percentile", "wilson", "wilson_diff"  # CI.method
_CHUNK = 256  # resamples drawn at once: bounds memory at _CHUNK x records indices


@dataclass(frozen=True)
class CI:
    estimate: float | None  # the statistic on the full data; None: not defined (no records, 0 denominator)
    low: float | None
    high: float | None
    n: int  # records
    level: float = 0.95
    undefined_resamples: int = 0  # resamples whose statistic was undefined (0 denominator): left out
    method: str = PERCENTILE  # WILSON / WILSON_DIFF: count-based, where the bootstrap collapsed

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiffCI(CI):
    """CI of stat(b) - stat(a) on the same records."""

    a: float | None = None
    b: float | None = None

    @property
    def excludes_zero(self) -> bool:
        """The difference is significant at the interval's level (both ends on the same side of 0)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


@dataclass(frozen=True)
class SeedsCI(CI):
    """CI over seeds and records; n is the records per seed summed, n_seeds the runs."""

    n_seeds: int = 0
    per_seed: list = field(default_factory=list)  # the statistic of each seed's run
    seed_mean: float | None = None
    seed_sd: float | None = None  # sample standard deviation (ddof=1); None with fewer than 2 seeds
    records: str = "shared"


class _Stat:
    """One statistic over one list of per-record values, on the full data or on resampled indices."""

    def __init__(self, values: Sequence, stat: str = "mean"):
        if stat not in STATS:
            raise ValueError(f"stat must be one of {', '.join(STATS)}, got {stat!r}")
        if isinstance(values, Mapping):  # list() of a mapping is its keys: they would be scored as the values
            raise TypeError("expected a sequence of per-record values, got a mapping: pass its values() (or items "
                            "in record order)")
        values = list(values)
        self.n = len(values)
        self.ratio = bool(values) and not _is_number(values[0])
        if self.ratio:
            for i, v in enumerate(values):
                if not isinstance(v, (Sequence, np.ndarray)) or len(v) != 2 or not all(map(_is_number, v)):
                    raise ValueError(f"value {i}: expected a (numerator, denominator) pair like value 0, got {v!r}")
            arr = np.asarray(values, dtype=float).reshape(self.n, 2)
            self.num, self.den = arr[:, 0], arr[:, 1]
            bad = np.flatnonzero(~np.isfinite(arr).all(1) | (self.den < 0))
            if bad.size:
                raise ValueError(f"value {bad[0]}: {values[bad[0]]!r}: numerator and denominator must be finite, "
                                 "the denominator >= 0")
            if stat == "mean_of_ratios":
                zero = np.flatnonzero(self.den == 0)
                if zero.size:
                    raise ValueError(f"value {zero[0]}: denominator 0 has no ratio (stat='mean_of_ratios')")
                self.values, self.ratio = self.num / self.den, False
        else:
            for i, v in enumerate(values):
                if not _is_number(v) or not math.isfinite(v):
                    raise ValueError(f"value {i}: expected a finite number like value 0, got {v!r}")
            if stat == "mean_of_ratios":
                raise ValueError("stat='mean_of_ratios' needs (numerator, denominator) pairs")
            self.values = np.asarray(values, dtype=float)

    @property
    def units(self) -> int:
        """Units with a defined value: the trials of a count-based interval."""
        return int((self.den > 0).sum()) if self.ratio else self.n

    @property
    def bounded(self) -> bool:
        """Every unit's value lies in [0, 1] (a rate, or a score on that scale): a count-based interval
        applies. For such values P(all 0) <= (1 - mean)^n as for 0/1 answers, so nothing is claimed
        beyond what the counts give."""
        if self.ratio:
            return bool(((self.num >= 0) & (self.num <= self.den)).all())
        return bool(((self.values >= 0) & (self.values <= 1)).all())

    def full(self) -> float | None:
        if not self.n:
            return None
        value = self.on(np.arange(self.n)[None])[0]
        return None if np.isnan(value) else float(value)

    def on(self, idx: np.ndarray) -> np.ndarray:
        """The statistic for each row of record indices (R, m); NaN where undefined."""
        if self.ratio:
            den = self.den[idx].sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(den > 0, self.num[idx].sum(1) / np.where(den > 0, den, 1), np.nan)
        return self.values[idx].mean(1)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating, np.bool_))  # bool is an int: flags are 0/1


def _check(n_resamples: int, level: float) -> None:
    if not (isinstance(n_resamples, int) and n_resamples >= 1):
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _interval(draws: np.ndarray, level: float) -> tuple[float | None, float | None, int]:
    """(low, high, undefined resamples) of a bootstrap distribution with NaN for undefined resamples."""
    ok = draws[~np.isnan(draws)]
    if not ok.size:
        return None, None, int(draws.size)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(ok, [tail, 100 - tail])
    return float(low), float(high), int(draws.size - ok.size)


def _collapsed(low, high) -> bool:
    """Every resample gave the same value (up to float rounding of equal ratios)."""
    return low is not None and high - low <= 1e-12


def wilson(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion p observed over n trials."""
    if n <= 0:
        raise ValueError(f"a Wilson interval needs at least one trial, got n={n}")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    z2 = z * z / n
    centre = (p + z2 / 2) / (1 + z2)
    half = z / (1 + z2) * math.sqrt(max(p * (1 - p), 0.0) / n + z2 / (4 * n))
    # at 0 and 1 the formula's end is the observed value itself; say so exactly rather than to 1e-16
    return 0.0 if p <= 0 else max(0.0, centre - half), 1.0 if p >= 1 else min(1.0, centre + half)


def wilson_diff(d: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of a paired difference d seen in every one of n units alike (see the module docstring):
    square-and-add of the Wilson intervals of its positive part max(d, 0) and negative part max(-d, 0)."""
    plus, minus = max(d, 0.0), max(-d, 0.0)
    (lp, up), (lm, um) = wilson(plus, n, level), wilson(minus, n, level)
    return d - math.sqrt((plus - lp) ** 2 + (um - minus) ** 2), d + math.sqrt((up - plus) ** 2 + (minus - lm) ** 2)


def _resampled(stats: list[_Stat], n: int, n_resamples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Each statistic on the same n_resamples draws of n record indices (joint resampling)."""
    out = [[] for _ in stats]
    for start in range(0, n_resamples, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, n_resamples - start), n))
        for acc, s in zip(out, stats):
            acc.append(s.on(idx))
    return [np.concatenate(acc) for acc in out]


def bootstrap_ci(values: Sequence, *, stat: str = "mean", n_resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> CI:
    """Percentile CI of the statistic over records (see the module docstring for `values` and `stat`)."""
    _check(n_resamples, level)
    s = _Stat(values, stat)
    estimate = s.full()
    if estimate is None:
        return CI(None, None, None, s.n, level)
    (draws,) = _resampled([s], s.n, n_resamples, np.random.default_rng(seed))
    low, high, undefined = _interval(draws, level)
    if _collapsed(low, high) and s.bounded:
        return CI(estimate, *wilson(estimate, s.units, level), s.n, level, undefined, WILSON)
    return CI(estimate, low, high, s.n, level, undefined)


def _aligned(a, b) -> tuple[list, list]:
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("a and b must both be mappings (record id -> value) or both sequences")
    if isinstance(a, Mapping):
        missing_b, missing_a = [k for k in a if k not in b], [k for k in b if k not in a]
        if missing_a or missing_b:
            raise ValueError(f"a and b must hold the same records: {len(missing_b)} only in a "
                             f"(e.g. {missing_b[:3]}), {len(missing_a)} only in b (e.g. {missing_a[:3]})")
        keys = list(a)
        return [a[k] for k in keys], [b[k] for k in keys]
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"a has {len(a)} records, b has {len(b)}: a paired comparison needs the same records")
    return a, b


def paired_bootstrap_diff(a, b, *, stat: str = "mean", n_resamples: int = 2000, seed: int = 0,
                          level: float = 0.95) -> DiffCI:
    """CI of stat(b) - stat(a) where a and b are two methods' values on the same records (e.g. base and
    +PD): mappings record id -> value are aligned by id, sequences by position. Each resample draws one
    set of record indices for both, so the records' shared difficulty cancels out of the difference."""
    _check(n_resamples, level)
    a, b = _aligned(a, b)
    sa, sb = _Stat(a, stat), _Stat(b, stat)
    ea, eb = sa.full(), sb.full()
    if ea is None or eb is None:
        return DiffCI(None, None, None, sa.n, level, a=ea, b=eb)
    da, db = _resampled([sa, sb], sa.n, n_resamples, np.random.default_rng(seed))
    low, high, undefined = _interval(db - da, level)
    if _collapsed(low, high) and sa.bounded and sb.bounded:
        low, high = wilson_diff(eb - ea, min(sa.units, sb.units), level)
        return DiffCI(eb - ea, low, high, sa.n, level, undefined, WILSON_DIFF, a=ea, b=eb)
    return DiffCI(eb - ea, low, high, sa.n, level, undefined, a=ea, b=eb)


def combine_seeds(per_seed_values: Sequence[Sequence], *, stat: str = "mean", n_resamples: int = 2000,
                  seed: int = 0, level: float = 0.95, records: str = "shared") -> SeedsCI:
    """CI of a method run under several training seeds, and the mean and sd over seeds.

    The estimate is the mean over seeds of each run's statistic. Each bootstrap resample draws the seeds
    with replacement, then records, and averages the drawn runs' statistics: the interval covers both
    seed-to-seed variation and the sampling of test records.
    records="shared" (default): the runs were scored on the same records (the same val file, aligned by
      position); one draw of record indices serves every drawn seed. This keeps each record's own
      difficulty common to all runs, as it is: drawing records anew per seed would average that out
      across seeds and give too narrow an interval.
    records="nested": records are drawn independently within each drawn seed (runs scored on different
      records).
    With few seeds (3 or so) the seed level has few distinct draws; print the mean +/- sd beside the CI.
    """
    _check(n_resamples, level)
    if records not in ("shared", "nested"):
        raise ValueError(f"records must be 'shared' or 'nested', got {records!r}")
    stats = [_Stat(v, stat) for v in per_seed_values]
    if not stats:
        raise ValueError("combine_seeds needs at least one seed's values")
    if records == "shared" and len({s.n for s in stats}) > 1:
        raise ValueError(f"records='shared' needs the same records in every seed, got counts "
                         f"{[s.n for s in stats]}; use records='nested' for runs on different records")
    per_seed = [s.full() for s in stats]
    n, k = sum(s.n for s in stats), len(stats)
    if any(v is None for v in per_seed):
        return SeedsCI(None, None, None, n, level, n_seeds=k, per_seed=per_seed, records=records)
    mean = float(np.mean(per_seed))
    sd = float(np.std(per_seed, ddof=1)) if k > 1 else None
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, k, size=(n_resamples, k))
    if records == "shared":
        on = np.stack(_resampled(stats, stats[0].n, n_resamples, rng))  # (seed, resample)
        draws = on[seeds, np.arange(n_resamples)[:, None]].mean(1)
    else:
        # Seed s's statistic on its own draws for every (resample, slot): a seed drawn twice in one
        # resample gets two independent record draws.
        on = np.stack([_resampled([s], s.n, n_resamples * k, rng)[0].reshape(n_resamples, k) for s in stats])
        draws = on[seeds, np.arange(n_resamples)[:, None], np.arange(k)[None, :]].mean(1)
    low, high, undefined = _interval(draws, level)
    method = PERCENTILE
    if _collapsed(low, high) and all(s.bounded for s in stats):
        # shared records: the seeds add no records, so the trials are one run's units
        trials = min(s.units for s in stats) if records == "shared" else sum(s.units for s in stats)
        (low, high), method = wilson(mean, trials, level), WILSON
    return SeedsCI(mean, low, high, n, level, undefined, method, n_seeds=k, per_seed=per_seed, seed_mean=mean,
                   seed_sd=sd, records=records)


def paired_seeds_diff(a_runs: Sequence[Sequence], b_runs: Sequence[Sequence], *, stat: str = "mean",
                      n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> DiffCI:
    """CI of (mean over seeds of stat(b)) - (mean over seeds of stat(a)) for two methods each run under
    the same seeds on the same records: a_runs[i] and b_runs[i] are seed i's per-record values. Each
    resample draws seeds with replacement (a seed's base and +PD runs stay together) and one set of
    record indices for all of them, so the interval carries the seed-to-seed spread as well as the
    records'; pooling the seeds' counts per record would hide the former."""
    _check(n_resamples, level)
    if len(a_runs) != len(b_runs) or not a_runs:
        raise ValueError(f"a and b need the same seeds, got {len(a_runs)} and {len(b_runs)} runs")
    pairs = [_aligned(a, b) for a, b in zip(a_runs, b_runs)]
    sa, sb = [_Stat(a, stat) for a, _ in pairs], [_Stat(b, stat) for _, b in pairs]
    if len({s.n for s in sa}) > 1:
        raise ValueError(f"every seed's run must hold the same records, got counts {[s.n for s in sa]}")
    fa, fb = [s.full() for s in sa], [s.full() for s in sb]
    if any(v is None for v in fa + fb):
        return DiffCI(None, None, None, sa[0].n, level)
    ea, eb = float(np.mean(fa)), float(np.mean(fb))
    k, rng = len(sa), np.random.default_rng(seed)
    seeds = rng.integers(0, k, size=(n_resamples, k))
    on = np.stack(_resampled(sa + sb, sa[0].n, n_resamples, rng))  # (2k, resample)
    rows = np.arange(n_resamples)[:, None]
    draws = on[k + seeds, rows].mean(1) - on[seeds, rows].mean(1)
    low, high, undefined = _interval(draws, level)
    if _collapsed(low, high) and all(s.bounded for s in sa + sb):
        low, high = wilson_diff(eb - ea, min(s.units for s in sa + sb), level)
        return DiffCI(eb - ea, low, high, sa[0].n, level, undefined, WILSON_DIFF, a=ea, b=eb)
    return DiffCI(eb - ea, low, high, sa[0].n, level, undefined, a=ea, b=eb)


def format_ci(ci, scale: float = 100, digits: int = 1) -> str:
    """'52.8 [41.7, 63.9]' for a CI (or its as_dict()) of a rate; 'n/a' when it is not defined."""
    get = ci.get if isinstance(ci, Mapping) else lambda key: getattr(ci, key)
    estimate, low, high = get("estimate"), get("low"), get("high")
    if estimate is None:
        return "n/a"
    if low is None:
        return f"{estimate * scale:.{digits}f} [n/a]"
    return f"{estimate * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def judged_values(records: Sequence[dict], source: str = "judged file") -> dict[str, list[tuple[float, int]]]:
    """Per metric, one (numerator, denominator) pair per IMAGE of evaluate's judged JSON (records with
    the same `image_path` summed into one cluster, in order of first appearance), counted as metrics.py
    counts: a rate over the items with a known label ("unknown" and null left out), a score summed over
    the UnharmPairs with a number. Pass each list to bootstrap_ci; the lists of two methods judged on the
    same file are aligned by position for paired_bootstrap_diff.
    Raises DataError naming `source`, the record and the field of a value that is no judged value."""
    per_record = _record_values(records, source)
    clusters: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        image = record.get("image_path")
        if not isinstance(image, str):
            raise DataError(f"{source}: record {i}: field 'image_path': expected a string (the bootstrap resamples "
                            f"images), got {type(image).__name__}")
        clusters.setdefault(image, []).append(i)
    return {name: [(sum(values[i][0] for i in members), sum(values[i][1] for i in members))
                   for members in clusters.values()]
            for name, values in per_record.items()}


def _record_values(records: Sequence[dict], source: str) -> dict[str, list[tuple[float, int]]]:
    out = {name: [] for name in judged_metrics.names()}
    for i, record in enumerate(records):
        where = f"{source}: record {i}"
        if not isinstance(record, dict) or not isinstance(record.get("unsafe_pairs"), list):
            raise DataError(f"{where}: field 'unsafe_pairs': expected a judged record with a list of pairs")
        for metric in judged_metrics.labelled():
            name, hit, miss = metric.name, metric.hit, metric.miss
            num = den = 0
            for j, pair in enumerate(record["unsafe_pairs"]):
                for _, field_name in metric.fields():
                    if not isinstance(pair, dict) or field_name not in pair:
                        raise DataError(f"{where}: field 'unsafe_pairs[{j}].{field_name}': missing")
                    value = pair[field_name]
                    if value not in (hit, miss, UNKNOWN, None):
                        raise DataError(f"{where}: field 'unsafe_pairs[{j}].{field_name}': expected "
                                        f"{hit!r}, {miss!r}, {UNKNOWN!r} or null, got {_short(value)}")
                    num, den = num + (value == hit), den + (value in (hit, miss))
            out[name].append((num, den))
        for metric in judged_metrics.scored():
            name, field_name = metric.name, metric.field
            total, count = 0.0, 0
            for key in metric.answers:
                unharm = record.get(key)
                if not isinstance(unharm, dict) or field_name not in unharm:
                    raise DataError(f"{where}: field '{key}.{field_name}': missing")
                value = unharm[field_name]
                if value in (UNKNOWN, None):
                    continue
                if not _is_number(value) or isinstance(value, bool) or not math.isfinite(value):
                    raise DataError(f"{where}: field '{key}.{field_name}': expected a number, {UNKNOWN!r} or "
                                    f"null, got {_short(value)}")
                total, count = total + value, count + 1
            out[name].append((total, count))
    return out


def rate_cis(records: Sequence[dict], *, source: str = "judged file", n_resamples: int = 2000, seed: int = 0,
             level: float = 0.95) -> dict[str, CI]:
    """bootstrap_ci of every metric of a judged file: {"ASR", "RR", "SARR", "ROUGE-L", "GPT-Eval"}; a
    metric with no known value anywhere (GPT-Eval of the keyword judge) has estimate None."""
    return {name: bootstrap_ci(values, n_resamples=n_resamples, seed=seed, level=level)
            for name, values in judged_values(records, source).items()}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
