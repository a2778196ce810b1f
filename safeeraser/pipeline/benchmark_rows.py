"""A benchmark grid's table (`benchmark:` in an experiment config): per row (the vanilla model, the
retain-only oracle, each method) every score of its scoring step's file, each forget split's forget quality
against the oracle's truth ratios (the KS test, eval/forget_quality.py) and the benchmark's model utility;
over several seeds the mean and the sample standard deviation of each. Written as JSON, CSV and Markdown
(one table per split: a benchmark scores a dozen numbers per split)."""
from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from safeeraser.eval.forget_quality import forget_quality
from safeeraser.io import atomic_write_json, atomic_write_text
from safeeraser.pipeline.experiment import ORACLE, Runner

PER_QUESTION = ("truth_ratios", "questions")  # kept in the scoring files, not table cells
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


def run_cells(runner: Runner, run, oracle_scores: dict | None) -> tuple[dict, dict]:
    """(cells, forget-quality tests) of one run: its scores, each forget split's forget quality against the
    oracle's truth ratios on the same split, the benchmark's model utility."""
    path = runner._made(runner.scores_path(run), "score")
    scores = json.loads(path.read_text())["scores"]
    cells = cells_of(scores)
    tests = {}
    for split, block in scores.items():
        theirs = (oracle_scores or {}).get(split, {}).get("truth_ratios")
        if runner.bench.forgets(split) and "truth_ratios" in block and theirs:
            tests[split] = forget_quality(block["truth_ratios"], theirs)
            cells[f"{split}/forget_quality"] = tests[split]["p_value"]
    if runner.bench.utility is not None:
        cells[f"{SUMMARY}/model_utility"] = runner.bench.utility(scores)
    return cells, tests


def benchmark_rows(runner: Runner) -> list[dict]:
    oracle = None
    if runner.oracle_path() is not None:
        oracle = json.loads(runner._made(runner.scores_path(runner.plan_run(ORACLE)), "score").read_text())["scores"]
    rows = []
    for method in runner.row_methods():
        seeds = runner.seeds_of(method)
        runs = [run_cells(runner, runner.plan_run(method, s), oracle) for s in seeds]
        if len(runs) == 1:
            rows.append({"method": method, "cells": runs[0][0], "forget_quality": runs[0][1]})
            continue
        keys = list(runs[0][0])
        values = {k: [cells.get(k) for cells, _ in runs] for k in keys}
        full = {k: v for k, v in values.items() if all(x is not None for x in v)}
        rows.append({"method": method, "seeds": seeds,
                     "cells": {k: statistics.fmean(v) if k in full else None for k, v in values.items()},
                     "sd": {k: statistics.stdev(v) if k in full else None for k, v in values.items()},
                     "runs": [{"cells": c, "forget_quality": t} for c, t in runs]})
    return rows


def columns(rows: list[dict]) -> list[str]:
    """Every cell key, in the order the rows first hold them."""
    return list(dict.fromkeys(k for r in rows for k in r["cells"]))


def _fmt(value, sd=None) -> str:
    """Three significant digits: the benchmarks' scores mix fractions (ROUGE, probabilities, p-values down
    to 1e-5) and percentages (MLLMU-Bench's accuracies), each as its own code reports it."""
    if value is None:
        return "n/a"
    return f"{value:.3g}" + ("" if sd is None else f" ± {sd:.2g}")


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
            lines.append(f"| {name} | " + " | ".join(_fmt(r["cells"].get(k), (r.get("sd") or {}).get(k))
                                                      for k in mine) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def write_benchmark_report(rows: list[dict], folder: Path, title: str, stem: str, meta: dict) -> list[Path]:
    keys = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["method", *keys, *(f"{k} sd" for k in keys)])
    for r in rows:
        sd = r.get("sd") or {}
        writer.writerow([r["method"], *(r["cells"].get(k) for k in keys), *(sd.get(k) for k in keys)])
    md = [f"# {title}", "", markdown(rows), ""]
    if any("forget_quality" in k for k in keys):
        md += ["forget_quality: the p-value of the KS test between the run's and the retain-only oracle's truth "
               "ratios on the forget split (high: indistinguishable from never having learnt it).", ""]
    files = [Path(folder) / f"{stem}.{ext}" for ext in ("json", "csv", "md")]
    atomic_write_json(files[0], {"rows": rows, "columns": keys, **meta})
    atomic_write_text(files[1], buf.getvalue())
    atomic_write_text(files[2], "\n".join(md))
    return files
