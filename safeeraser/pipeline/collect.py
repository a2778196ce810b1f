"""`safeeraser collect`: the report `safeeraser run` writes (table, CSV, JSON, plot), from eval outputs
made elsewhere: eval_all.py's judged files named row by row, and the reports of other run folders.

A row from judged files is built exactly as the runner builds one (row_from, intervals, combine_seeds
over seeds, PD's paired effect on the same records), so a table collected from a run's own files is
that run's table."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from safeeraser.eval import stats_path_for
from safeeraser.eval.bootstrap import judged_values
from safeeraser.eval.degenerate import degenerate_by_view
from safeeraser.io import DataError
from safeeraser.io import read_json_records
from safeeraser.pipeline.columns import COLUMNS, RATES
from safeeraser.pipeline.report import write_report
from safeeraser.pipeline.rows import add_degenerate, combine_seeds, intervals, pd_effect, row_from
from safeeraser.provenance import environment, file_sha256
from safeeraser.train.config import ConfigError

SPLITS = ("train", "val")  # a row's files, in the order --row names them: Efficacy, then Generality
ROW_SYNTAX = "NAME[@SEED]=TRAIN_rr.json,VAL_rr.json[,specificity.json]"


@dataclass(frozen=True)
class RowSpec:
    """One --row: a method's judged files (and its specificity summary) for one seed."""
    name: str
    seed: int | None
    judged: dict  # split -> judged file
    specificity: Path | None = None


@dataclass
class JudgedSplit:
    """One eval_all output: its stats, per-record values (for intervals) and degenerate shares."""
    path: Path
    stats: dict
    values: dict
    degenerate: dict
    judge: dict


@dataclass
class Collected:
    rows: list
    pd_effects: list
    judge: dict
    sources: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def parse_row(text: str) -> RowSpec:
    """`NAME[@SEED]=TRAIN,VAL[,SPEC]` -> RowSpec; ConfigError naming what is wrong."""
    name, sep, files = text.partition("=")
    name, at, seed = name.strip().partition("@")
    if not sep or not name:
        raise ConfigError(f"--row '{text}': expected {ROW_SYNTAX}")
    if not re.fullmatch(r"[\w.+-]+", name):
        raise ConfigError(f"--row '{text}': the row name '{name}' may hold letters, digits and _ . + - only")
    if at and not re.fullmatch(r"-?\d+", seed):
        raise ConfigError(f"--row '{text}': the seed after '@' must be an integer, got '{seed}'")
    paths = [p.strip() for p in files.split(",") if p.strip()]
    if len(paths) < len(SPLITS):
        got = ", ".join(paths) or "none"
        raise ConfigError(f"--row '{name}': a row needs its train and val judged files (got {got}): {ROW_SYNTAX}")
    if len(paths) > len(SPLITS) + 1:
        raise ConfigError(f"--row '{name}': {len(paths)} files; expected {ROW_SYNTAX}")
    spec = Path(paths[2]) if len(paths) > len(SPLITS) else None
    return RowSpec(name, int(seed) if at else None, dict(zip(SPLITS, map(Path, paths))), spec)


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise DataError(f"{path}: file not found ({what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not {what} (unreadable JSON: {exc})") from None


def load_judged(path: Path) -> JudgedSplit:
    """An eval_all output: the judged file and its stats file beside it (either may be named).
    DataError naming the file when one is missing, is not an eval output, or the two do not belong together."""

    path = Path(path)
    judged, stats_file = (path.with_suffix(".json"), path) if path.suffix == ".txt" else (path, stats_path_for(path))
    if not judged.is_file():
        raise DataError(f"{judged}: file not found (a judged file, eval_all.py --output_file_rr)")
    stats = _read_json(stats_file, f"the stats file eval_all.py writes beside {judged.name}")
    summary = stats.get("summary") if isinstance(stats, dict) else None
    if not isinstance(summary, dict) or any(c.metric not in summary for c in RATES):
        raise DataError(f"{stats_file}: not an eval_all stats file (no 'summary' with "
                        f"{', '.join(sorted({c.metric for c in RATES}))})")
    records = read_json_records(judged)
    try:
        values = judged_values(records, str(judged))
        degenerate = degenerate_by_view(records, str(judged))
    except DataError as exc:
        raise DataError(f"{judged}: not a judged eval output (eval_all.py --output_file_rr): "
                        f"{str(exc).removeprefix(str(judged) + ': ')}") from None
    # A stats file renamed or copied beside other answers would put one file's rates beside another's
    # intervals: the summary must be what the judged labels count to (it is rounded to 0.01).
    for metric, pairs in values.items():
        den = sum(d for _, d in pairs)
        mine, theirs = (100.0 * sum(n for n, _ in pairs) / den if den else None), summary.get(metric)
        if (mine is None) != (theirs is None) or (mine is not None and abs(mine - theirs) > 0.0051):
            raise DataError(f"{stats_file}: its {metric} ({theirs}) is not what {judged} counts to ({mine}): "
                            "the stats file belongs to other judged answers")
    described = stats.get("judge") or {}
    judge = {"name": described.get("name"), "prompt_version": described.get("prompt_version")}
    return JudgedSplit(judged, stats, values, degenerate, judge)


def _load_specificity(path: Path | None) -> dict | None:
    if path is None:
        return None
    spec = _read_json(path, "a specificity summary (safeeraser specificity's specificity.json)")
    if not isinstance(spec, dict) or "average" not in spec:
        raise DataError(f"{path}: not a specificity summary (no 'average'; safeeraser specificity's specificity.json)")
    return spec


def _judge_label(judge: dict) -> str:
    return f"{judge.get('name')}" + (f" (prompt {judge['prompt_version']})" if judge.get("prompt_version") else "")


def hand_rows(specs: list[RowSpec], bootstrap) -> tuple[list[dict], list[dict], list[tuple[str, dict]]]:
    """Rows (in the order names first appear), PD effects, and (source, judge) of every file read."""

    groups: dict[str, list[RowSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.name, []).append(spec)
    rows, values, judges = [], {}, []
    for name, runs in groups.items():
        if len(runs) > 1:
            seeds = [r.seed for r in runs]
            if None in seeds:
                raise ConfigError(f"--row '{name}' is given {len(runs)} times: name each run's seed "
                                  f"({name}@SEED=...) to average them over seeds")
            if len(set(seeds)) != len(seeds):
                raise ConfigError(f"--row '{name}': seed {seeds[0]} is given twice")
        built = []
        for spec in runs:
            splits = {split: load_judged(path) for split, path in spec.judged.items()}
            judges += [(str(s.path), s.judge) for s in splits.values()]
            values.setdefault(name, []).append({split: s.values for split, s in splits.items()})
            row = row_from(name, {split: s.stats for split, s in splits.items()}, _load_specificity(spec.specificity))
            row["ci"], row["ci_notes"] = intervals(values[name][-1], bootstrap)
            add_degenerate(row, {split: s.degenerate for split, s in splits.items()})
            built.append(row)
        if len(built) == 1:
            rows.append(built[0])
        else:
            row = combine_seeds(name, [r.seed for r in runs], built)
            row["ci"], row["ci_notes"] = intervals(values[name], bootstrap)
            rows.append(row)
    return rows, pd_effects(list(groups), values, groups, bootstrap), judges


def pd_effects(names: list[str], values: dict, groups: dict, bootstrap) -> list[dict]:
    """For each NAME given with NAMEpd: +PD minus base of each rate on the same records, paired over the
    seeds both have (the runner's pd_effects, for rows named by hand)."""

    effects = []
    for base in names:
        with_pd = f"{base}pd"
        if with_pd not in values:
            continue
        seeds_a, seeds_b = [s.seed for s in groups[base]], [s.seed for s in groups[with_pd]]
        if sorted(seeds_a, key=str) != sorted(seeds_b, key=str):
            raise ConfigError(f"--row '{base}' (seeds {seeds_a}) and '{with_pd}' (seeds {seeds_b}): PD's paired "
                              "effect needs the same seeds for both")
        order = {seed: i for i, seed in enumerate(seeds_b)}
        runs_b = [values[with_pd][order[seed]] for seed in seeds_a]  # a seed's two runs side by side
        for col in RATES:
            sizes = {len(run[col.split][col.metric]) for run in values[base] + runs_b}
            if len(sizes) > 1:
                raise DataError(f"--row '{base}' and '{with_pd}': their {col.split} files hold different numbers "
                                "of records; PD's paired effect needs answers to the same records")
        effects.append(pd_effect(base, values[base], runs_b, bootstrap))
    return effects


def load_run_report(path: Path) -> tuple[Path, dict]:
    """A run folder's report.json (or a report JSON named directly), checked to be one."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        others = sorted(p.name for p in path.glob("report*.json"))
        hint = f" (it has {', '.join(others)}: name one)" if others else " (not a safeeraser run folder?)"
        raise DataError(f"{file}: file not found{hint}")
    report = _read_json(file, "a safeeraser run report (report.json)")
    rows = report.get("rows") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{file}: not a safeeraser run report (no 'rows')")
    for i, row in enumerate(rows):
        missing = [k for k in ("method", *(c.key for c in COLUMNS)) if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(f"{file}: row {i}: not a report row (missing {', '.join(missing)})")
    return file, report


def run_rows(paths: list[Path], taken: set[str]) -> tuple[list[dict], list[dict], list[tuple[str, dict]], list[str]]:
    """The rows and PD effects of run reports, as they are; a method name that another source has too
    is prefixed with its run's name (`mini-llava:vanilla`)."""
    loaded = [load_run_report(p) for p in paths]
    counts: dict[str, int] = {}
    for _, report in loaded:
        for row in report["rows"]:
            counts[row["method"]] = counts.get(row["method"], 0) + 1
    rows, effects, judges, notes = [], [], [], []
    for file, report in loaded:
        run_name = (report.get("config") or {}).get("name") or file.parent.name
        clash = {m for m in (r["method"] for r in report["rows"]) if counts[m] > 1 or m in taken}
        rename = {m: (f"{run_name}:{m}" if m in clash else m) for m in (r["method"] for r in report["rows"])}
        for row in report["rows"]:
            rows.append({**row, "method": rename[row["method"]]})
        for e in report.get("pd_effects") or []:
            effects.append({**e, "method": rename.get(e["method"], e["method"]),
                            "with_pd": rename.get(e["with_pd"], e["with_pd"])})
        judges.append((str(file), report.get("judge") or {}))
        if clash:
            notes.append(f"{file}: rows {', '.join(sorted(clash))} renamed {run_name}:NAME (another source has them)")
    return rows, effects, judges, notes


def collect(row_specs: list[str], runs: list[str | Path], *, resamples: int = 2000, seed: int = 0) -> Collected:
    """Every row named by hand (`--row`), then every run report's rows; one judge for the whole table."""

    if not row_specs and not runs:
        raise ConfigError(f"nothing to collect: give --row {ROW_SYNTAX} and/or --runs RUN_FOLDER ...")
    if resamples < 100:
        raise ConfigError(f"--resamples: at least 100, got {resamples}")
    bootstrap = SimpleNamespace(resamples=resamples, seed=seed)
    rows, effects, judges = hand_rows([parse_row(t) for t in row_specs], bootstrap)
    more_rows, more_effects, more_judges, notes = run_rows([Path(r) for r in runs], {r["method"] for r in rows})
    rows, effects, judges = rows + more_rows, effects + more_effects, judges + more_judges
    names = [r["method"] for r in rows]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"rows named twice: {', '.join(twice)} (two run folders with the same name?)")
    distinct = {(j.get("name"), j.get("prompt_version")) for _, j in judges}
    if len(distinct) > 1:
        seen = {}
        for source, j in judges:
            seen.setdefault(_judge_label(j), source)
        raise DataError("a table compares one judge's rates, but these sources were judged by different judges: "
                        + "; ".join(f"{source}: {label}" for label, source in seen.items()))
    sources = [{"file": source, "sha256": file_sha256(source)} for source, _ in judges]
    return Collected(rows, effects, dict(judges[0][1]), sources, notes)


def write_collected(result: Collected, out: str | Path, title: str, stem: str = "report") -> list[Path]:
    judge = {"name": result.judge.get("name"), "prompt_version": result.judge.get("prompt_version")}
    meta = {"judge": judge, "collected_from": result.sources, "notes": result.notes, "provenance": environment()}
    return write_report(result.rows, Path(out), title=title, meta=meta, stem=stem, pd=result.pd_effects)
