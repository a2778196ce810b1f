"""Two reports compared cell by cell: the first check of a user who reproduces a published table (a fresh
`safeeraser run --config mini.yaml` against results/reference/mini-llava/report.json), and of a developer
whose change should leave the table as it was.

A cell is a number or label anywhere in a row (a metric, an interval's end, a degenerate-answer count),
named by its path: `eff_asr`, `ci.eff_asr[0]`, `degenerate.val.harmful.rate`. Rows are matched by method;
PD's paired effects by their pair of methods. Light imports only."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from safeeraser.io import DataError

SECTIONS = {"rows": ("method",), "pd_effects": ("method", "with_pd")}


@dataclass(frozen=True)
class Difference:
    section: str  # rows or pd_effects
    row: str  # the method (or "ga -> gapd")
    cell: str  # the path inside the row; "" when the whole row is missing on one side
    reference: object
    fresh: object

    @property
    def delta(self) -> float | None:
        a, b = self.reference, self.fresh
        if _number(a) and _number(b):
            return b - a
        return None

    def line(self) -> str:
        if not self.cell:
            return f"{self.section} {self.row}: only in {'the reference' if self.fresh is None else 'the fresh'} report"
        delta = self.delta
        change = f" ({delta:+.4g})" if delta is not None else ""
        return f"{self.section} {self.row} {self.cell}: {_show(self.reference)} -> {_show(self.fresh)}{change}"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v) -> str:
    return "missing" if v is _MISSING else json.dumps(v)


_MISSING = object()


def _cells(value, path: str = "") -> dict:
    """Every leaf of a row, by its path."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_cells(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_cells(v, f"{path}[{i}]"))
        return out
    return {path: value}


def _equal(a, b, tol: float) -> bool:
    if _number(a) and _number(b):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= tol
    return a == b


def _keyed(report: dict, section: str) -> dict:
    keys = SECTIONS[section]
    out = {}
    for i, row in enumerate(report.get(section) or []):
        key = " -> ".join(str(row.get(k)) for k in keys if k in row) or f"#{i}"
        out[key if key not in out else f"{key} #{i}"] = row
    return out


def compare_reports(reference: dict, fresh: dict, tol: float = 0.0) -> list[Difference]:
    """Every cell that differs by more than `tol` (numbers; anything else must be equal), in the reference's
    row order, then rows only the fresh report has."""
    diffs = []
    for section in SECTIONS:
        ref, new = _keyed(reference, section), _keyed(fresh, section)
        for key, row in ref.items():
            if key not in new:
                diffs.append(Difference(section, key, "", row, None))
                continue
            a, b = _cells(row), _cells(new[key])
            for cell in [*a, *(c for c in b if c not in a)]:
                x, y = a.get(cell, _MISSING), b.get(cell, _MISSING)
                if not _equal(x, y, tol):
                    diffs.append(Difference(section, key, cell, x, y))
        diffs += [Difference(section, key, "", None, row) for key in new if key not in ref]
    return diffs


def summary(reference: dict, fresh: dict, diffs: list[Difference], limit: int = 40) -> str:
    rows = len(_keyed(reference, "rows"))
    if not diffs:
        return f"the reports agree: {rows} rows and {len(_keyed(reference, 'pd_effects'))} PD effects, every cell equal"
    changed = {(d.section, d.row) for d in diffs}
    out = [f"the reports differ: {sum(1 for s, _ in changed if s == 'rows')} of {rows} rows and "
           f"{sum(1 for s, _ in changed if s == 'pd_effects')} PD effects, {len(diffs)} cells"]
    out += [f"  {d.line()}" for d in diffs[:limit]]
    if len(diffs) > limit:
        out.append(f"  ... and {len(diffs) - limit} more cells")
    return "\n".join(out)


def load_report(path: str | Path) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except OSError as exc:
        raise DataError(f"{path}: cannot read the report: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list):
        raise DataError(f"{path}: not a report of `safeeraser run` (no 'rows' list)")
    return report
