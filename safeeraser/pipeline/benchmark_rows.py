"""A benchmark grid's table (`benchmark:` in an experiment config): per row (the vanilla model, the
retain-only oracle, each method) every score of its scoring step's file, each forget split's forget quality
against the oracle's truth ratios (the KS test, eval/forget_quality.py) and the benchmark's model utility;
over several seeds the mean and the sample standard deviation of each. Written as JSON, CSV and Markdown
(one table per split: a benchmark scores a dozen numbers per split).

Intervals (95%, percentile bootstrap, eval/bootstrap.py): a task's score is a mean over its items, so each
unit (the record its items ask about: eval_items' 4th element, else the image) carries (n * its score, n)
and a resample of units pools them as the task would score those units' items (checked: pooled over all
units, they give the task's own score, else that cell has no interval); truth ratios resample questions;
over seeds, the runs and the units both (the units shared, as the runs answer the same items). Answer
probability, forget quality (itself a test's p-value) and model utility have none."""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

from safeeraser.benchmarks.evaluate import unit_of
from safeeraser.eval.bootstrap import PERCENTILE
from safeeraser.eval.forget_quality import forget_quality, truth_ratio_values
from safeeraser.io import atomic_write_json, atomic_write_text
from safeeraser.pipeline.experiment import ORACLE, Runner
from safeeraser.pipeline.rows import mean_sd, run_ci

PER_QUESTION = ("truth_ratios", "questions", "answers")  # kept in the scoring files, not table cells
SUMMARY = "summary"  # the table of the cells that span splits (model utility)


def cells_of(scores: dict) -> dict[str, float]:
    """Every number of a run's scores as `split/score` (a ROUGE block's variants as `split/rouge.rougeL`)."""
    out = {}
    for split, block in scores.items():
        for name, value in block.items():
            if name in PER_QUESTION or name == "forget_quality":
                continue
            if isinstance(value, dict):
                out.update({f"{split}/{name}.{k}": v for k, v in value.items()})
            else:
                out[f"{split}/{name}"] = value
    return out


def run_cells(runner: Runner, scores: dict, oracle_scores: dict | None) -> tuple[dict, dict]:
    """(cells, forget-quality tests) of one run: its scores, each forget split's forget quality against the
    oracle's truth ratios on the same split, the benchmark's model utility."""
    cells = cells_of(scores)
    tests = {}
    for split in runner.bench.quality_splits(scores):
        theirs = (oracle_scores or {}).get(split, {}).get("truth_ratios")
        if theirs:
            tests[split] = forget_quality(scores[split]["truth_ratios"], theirs)
            cells[f"{split}/forget_quality"] = tests[split]["p_value"]
    if runner.bench.utility is not None:
        cells[f"{SUMMARY}/model_utility"] = runner.bench.utility(scores)
    return cells, tests


def _numbers(score, prefix: str) -> dict[str, float]:
    return {f"{prefix}.{k}": v for k, v in score.items()} if isinstance(score, dict) else {prefix: score}


def unit_values(task, answers: list[str], items: list[tuple], prefix: str, score) -> dict[str, list[tuple]]:
    """Per cell of one task: (n * the unit's score, n) of each unit, in the units' first-seen order; a cell
    whose units do not pool back to `score`, the task's own over all items (not a mean over items), is left
    out."""
    units: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        units[unit_of(item)].append(i)
    whole = _numbers(score, prefix)
    per_unit = [(len(idx), _numbers(task([answers[i] for i in idx], [items[i][2] for i in idx]), prefix))
                for idx in units.values()]
    out = {}
    for key, total in whole.items():
        values = [(n * scores[key], n) for n, scores in per_unit]
        pooled = sum(v for v, _ in values) / sum(n for _, n in values)
        if math.isclose(pooled, total, rel_tol=1e-9, abs_tol=1e-12):
            out[key] = values
    return out


def run_units(runner: Runner, scores: dict, items_of) -> dict[str, list]:
    """Every cell's per-unit values of one run (see unit_values), truth ratios per question."""
    out = {}
    for split, block in scores.items():
        for task, answers in block.get("answers", {}).items():
            out.update(unit_values(runner.bench.tasks[task], answers, items_of(split)[task], f"{split}/{task}",
                                   block[task]))
        ratios = block.get("truth_ratios")
        if ratios:
            out[f"{split}/truth_ratio"] = truth_ratio_values(ratios, runner.bench.forgets(split)).tolist()
    return out


def intervals(per_run_units: list[dict], bootstrap) -> tuple[dict, dict]:
    """({cell: [low, high] or None}, {cell: method} where not the percentile's) over one run or several."""
    ci, notes = {}, {}
    for key in per_run_units[0]:
        values = [units.get(key) for units in per_run_units]
        if any(v is None for v in values):
            continue
        found = run_ci(values, bootstrap)
        ci[key] = None if found.low is None else [found.low, found.high]
        if found.method != PERCENTILE:
            notes[key] = found.method
    return ci, notes


def benchmark_rows(runner: Runner) -> list[dict]:
    oracle = None
    if runner.oracle_path() is not None:
        oracle = runner.scores_of(runner.plan_run(ORACLE))
    root = Path(runner.cfg.benchmark.data_path)
    items: dict[str, dict] = {}

    def items_of(split: str) -> dict:
        if split not in items:
            items[split] = runner.bench.eval_items(root, split)
        return items[split]

    rows = []
    for method in runner.row_methods():
        seeds = runner.seeds_of(method)
        made = [runner.scores_of(runner.plan_run(method, s)) for s in seeds]
        runs = [run_cells(runner, scores, oracle) for scores in made]
        ci, notes = intervals([run_units(runner, scores, items_of) for scores in made], runner.cfg.bootstrap)
        if len(runs) == 1:
            rows.append({"method": method, "cells": runs[0][0], "ci": ci, "ci_notes": notes,
                         "forget_quality": runs[0][1]})
            continue
        mean, sd = mean_sd([cells for cells, _ in runs], list(runs[0][0]))
        rows.append({"method": method, "seeds": seeds, "cells": mean, "sd": sd, "ci": ci, "ci_notes": notes, "runs": [{"cells": c, "forget_quality": t} for c, t in runs]})
    return rows


def columns(rows: list[dict]) -> list[str]:
    """Every cell key, in the order the rows first hold them."""
    return list(dict.fromkeys(k for r in rows for k in r["cells"]))


def _fmt(value, sd=None, ci=None, note=None) -> str:
    """Three significant digits: the benchmarks' scores mix fractions (ROUGE, probabilities, p-values down
    to 1e-5) and percentages (MLLMU-Bench's accuracies), each as its own code reports it. † after a
    count-based interval (where every resample agreed)."""
    if value is None:
        return "n/a"
    text = f"{value:.3g}" + ("" if sd is None else f" ± {sd:.2g}")
    return text + ("" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]" + ("†" if note else ""))


def markdown(rows: list[dict]) -> str:
    """One table per split (and the summary), rows the runs, columns that split's scores."""
    keys = columns(rows)
    parts = []
    for split in dict.fromkeys(k.split("/", 1)[0] for k in keys):
        mine = [k for k in keys if k.split("/", 1)[0] == split]
        lines = [f"**{split}**", "", "| method | " + " | ".join(k.split("/", 1)[1] for k in mine) + " |",
                 "| --- |" + " ---: |" * len(mine)]
        for r in rows:
            name = r["method"] + (f" (n={len(r['seeds'])})" if "seeds" in r else "")
            lines.append(f"| {name} | " + " | ".join(
                _fmt(r["cells"].get(k), (r.get("sd") or {}).get(k), (r.get("ci") or {}).get(k),
                     (r.get("ci_notes") or {}).get(k)) for k in mine) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def write_benchmark_report(rows: list[dict], folder: Path, title: str, stem: str, meta: dict) -> list[Path]:
    keys = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    ends = [f"{k} {end}" for k in keys for end in ("low", "high")]
    writer.writerow(["method", *keys, *(f"{k} sd" for k in keys), *ends])
    for r in rows:
        sd, ci = r.get("sd") or {}, r.get("ci") or {}
        writer.writerow([r["method"], *(r["cells"].get(k) for k in keys), *(sd.get(k) for k in keys),
                         *((ci.get(k) or [None, None])[i] for k in keys for i in (0, 1))])
    md = [f"# {title}", "", markdown(rows), ""]
    md += ["Each cell: the score (± the sd over seeds) [its 95% bootstrap interval over the records asked "
           "about; over seeds, over seeds and records]; † count-based where every resample agreed. Answer "
           "probability, forget quality and model utility have no interval.", ""]
    if any("forget_quality" in k for k in keys):
        md += ["forget_quality: the p-value of the KS test between the run's and the retain-only oracle's truth "
               "ratios on the forget split (high: indistinguishable from never having learnt it).", ""]
    files = [Path(folder) / f"{stem}.{ext}" for ext in ("json", "csv", "md")]
    atomic_write_json(files[0], {"rows": rows, "columns": keys, **meta})
    atomic_write_text(files[1], buf.getvalue())
    atomic_write_text(files[2], "\n".join(md))
    return files
