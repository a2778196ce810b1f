"""The bench's table: one row per measured quantity, ours against the reference-style configuration."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Row:
    key: str
    name: str
    unit: str
    ours: float
    reference: float
    better: str = "higher"  # "higher" or "lower": which way ours should beat the reference
    target: float | None = None  # the target for `ratio` (a floor when better is higher, else a ceiling)
    target_note: str = ""
    target_on: str = "ratio"  # "ratio": ours / reference; "ours": ours' own value (already a ratio of ours)
    # The same rate per second of process CPU time (CPU-bound rows on a CPU with one thread): what a
    # dedicated core gives, unaffected by other processes on a shared machine.
    ours_cpu: float | None = None
    reference_cpu: float | None = None

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else float("inf")

    @property
    def ratio_cpu(self) -> float | None:
        if self.ours_cpu is None or not self.reference_cpu:
            return None
        return self.ours_cpu / self.reference_cpu

    @property
    def judged_ratio(self) -> float:
        """The ratio a target is judged on: CPU time where measured (see ours_cpu), else wall clock."""
        return self.ratio_cpu if self.ratio_cpu is not None else self.ratio

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        r = self.ours if self.target_on == "ours" else self.judged_ratio
        return r >= self.target if self.better == "higher" else r <= self.target

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["ratio_cpu"] = self.ratio_cpu
        d["met"] = self.met
        return d


def _num(x: float) -> str:
    if x != x:  # NaN: not measured (no reference figure for this row)
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _ratio(value: float, times: str) -> str:
    return "n/a" if value != value else f"{value:.2f}{times}"


def _target_text(r: Row, ge: str, le: str, times: str, met: str, not_met: str) -> str:
    if r.target is None:
        return ""
    bound = f"{ge if r.better == 'higher' else le} {r.target:g}"
    bound = f"ours {bound}" if r.target_on == "ours" else bound + times
    text = f"{bound} {met if r.met else not_met}"
    return text + (f" ({r.target_note})" if r.target_note else "")


def format_table(rows: list[Row]) -> str:
    head = ("measure", "ours", "reference", "ratio", "ratio (CPU time)", "target (judged on CPU time where given)")
    lines = []
    for r in rows:
        target = _target_text(r, ">=", "<=", "x", "met", "NOT MET")
        cpu = "" if r.ratio_cpu is None else f"{r.ratio_cpu:.2f}x"
        lines.append((f"{r.name} [{r.unit}]", _num(r.ours), _num(r.reference), _ratio(r.ratio, "x"), cpu, target))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cols):
        return "  ".join(c.ljust(widths[i]) if i in (0, 5) else c.rjust(widths[i]) for i, c in enumerate(cols)).rstrip()

    out = [fmt(head), fmt(tuple("-" * w for w in widths))]
    out += [fmt(x) for x in lines]
    return "\n".join(out)


def format_markdown(rows: list[Row]) -> str:
    out = ["| measure | ours | reference | ratio | ratio (CPU time) | target (judged on CPU time where given) |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        target = _target_text(r, "≥", "≤", "× —", "met", "**not met**")
        cpu = "" if r.ratio_cpu is None else f"{r.ratio_cpu:.2f}×"
        out.append(f"| {r.name} ({r.unit}) | {_num(r.ours)} | {_num(r.reference)} | {_ratio(r.ratio, '×')} | {cpu} "
                   f"| {target} |")
    return "\n".join(out)
