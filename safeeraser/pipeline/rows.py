"""A report's rows from the runs' judged values: each rate column, its interval, the mean and sd over seeds,
and PD's paired effect. `safeeraser run` (pipeline/experiment.py) and `safeeraser collect`
(pipeline/collect.py) both build their rows here, so a table means the same whichever made it."""
from __future__ import annotations

import statistics

from safeeraser.eval.bootstrap import PERCENTILE, bootstrap_ci, combine_seeds as seeds_ci, paired_seeds_diff
from safeeraser.pipeline.columns import COLUMNS, RATES


def pd_effect(base: str, runs_a: list[dict], runs_b: list[dict], bootstrap) -> dict:
    """+PD minus base of each rate on the same records: `runs_a` (the method's runs) and `runs_b` (its PD
    variant's) in the same seed order, a seed's two runs kept together by a paired bootstrap."""
    effect = {"method": base, "with_pd": f"{base}pd"}
    for col in RATES:
        a = [run[col.split][col.metric] for run in runs_a]
        b = [run[col.split][col.metric] for run in runs_b]
        diff = paired_seeds_diff(a, b, n_resamples=bootstrap.resamples, seed=bootstrap.seed)
        effect[col.key] = {**diff.as_dict(), "excludes_zero": diff.excludes_zero}
    return effect


def percent(x):
    return None if x is None else 100.0 * x


def run_ci(per_run: list, bootstrap):
    """The interval of one run's values (resampled), or over several runs' (seeds: the seeds and the values)."""
    opts = {"n_resamples": bootstrap.resamples, "seed": bootstrap.seed}
    return bootstrap_ci(per_run[0], **opts) if len(per_run) == 1 else seeds_ci(per_run, **opts)


def intervals(runs, bootstrap) -> tuple[dict, dict]:
    """95% intervals (percent) of each rate column, resampling images (a record's samples and an image's
    records are not independent); over several runs (seeds) a hierarchical bootstrap. Returns the
    intervals {column: [low, high] or None} and notes {column: {"method", "undefined_resamples",
    "resamples"}} for the columns whose interval is count-based (the bootstrap collapsed) or left
    resamples out (no judged answer in the draw)."""
    runs = runs if isinstance(runs, list) else [runs]
    out, notes = {}, {}
    for col in RATES:
        ci = run_ci([run[col.split][col.metric] for run in runs], bootstrap)
        out[col.key] = None if ci.low is None else [percent(ci.low), percent(ci.high)]
        if ci.method != PERCENTILE or ci.undefined_resamples:
            notes[col.key] = {"method": ci.method, "undefined_resamples": ci.undefined_resamples,
                              "resamples": bootstrap.resamples}
    return out, notes


def add_degenerate(row: dict, by_split: dict) -> dict:
    """The row's degenerate-answer counts per split and view, and its `degen` column: the share of harmful
    (val) answers that say nothing."""
    row["degenerate"] = by_split
    row["degen"] = percent(by_split["val"]["harmful"]["rate"])
    return row


def row_from(method: str, stats: dict, spec: dict | None) -> dict:
    row = {"method": method}
    for col in COLUMNS:
        if col.split:
            row[col.key] = stats[col.split]["summary"][col.metric]
        elif col.key == "specificity":
            row[col.key] = None if spec is None else spec.get("average")
    return row  # degen is set by the runner, from the answers


def mean_sd(runs: list[dict], keys) -> tuple[dict, dict]:
    """({key: mean}, {key: sample standard deviation}) of each key over the runs' values; a key missing (None)
    in any run is None in both."""
    mean: dict = {}
    sd: dict = {}
    for key in keys:
        values = [r.get(key) for r in runs]
        missing = any(v is None for v in values)
        mean[key] = None if missing else statistics.fmean(values)
        sd[key] = None if missing else statistics.stdev(values)
    return mean, sd


def combine_seeds(method: str, seeds: list[int], runs: list[dict]) -> dict:
    """Mean and sample standard deviation of each column over the runs; a column missing (None) in
    any run stays None."""
    mean, sd = mean_sd(runs, [c.key for c in COLUMNS])
    return {"method": method, "seeds": seeds, **mean, "sd": sd, "runs": runs}
