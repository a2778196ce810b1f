"""The experiment's table as Markdown, CSV, JSON and a chart: every rate with its 95% interval, the
effect of PD with a paired interval, and how far other judges agree with the experiment's judge."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from safeeraser.eval import judged_metrics
from safeeraser.eval.agreement import cohen_kappa
from safeeraser.io import atomic_write_json, atomic_write_text
from safeeraser.pipeline.columns import COLUMNS, RATES


def agreement_metrics() -> list[str]:
    """The metrics two judges' labels are compared on: the labelled ones."""
    return [m.name for m in judged_metrics.labelled()]


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _cell(row: dict, key: str) -> str:
    text = _fmt(row[key])
    sd = row.get("sd", {}).get(key)
    if sd is not None:
        text += f" ± {sd:.1f}"
    ci = (row.get("ci") or {}).get(key)
    if ci is not None:
        text += f" [{ci[0]:.1f}, {ci[1]:.1f}]" + _mark(((row.get("ci_notes") or {}).get(key) or {}).get("method"))
    return text


def _mark(method: str | None) -> str:
    """† after a count-based interval (where the bootstrap collapsed)."""
    return "" if method in (None, "percentile") else "†"


def undefined_notes(rows: list[dict], effects: list[dict]) -> list[str]:
    """'method column: k of R' for every interval that left resamples out (no judged answer in the draw)."""
    out = []
    for r in rows:
        for key, note in (r.get("ci_notes") or {}).items():
            if note.get("undefined_resamples"):
                out.append(f"{r['method']} {key}: {note['undefined_resamples']} of {note['resamples']}")
    for e in effects:
        for c in RATES:
            d = e.get(c.key) or {}
            if d.get("undefined_resamples"):
                out.append(f"{e['method']} → {e['with_pd']} {c.key}: {d['undefined_resamples']}")
    return out


def markdown_table(rows: list[dict]) -> str:
    head = "| method | " + " | ".join(c.label for c in COLUMNS) + " |"
    sep = "| --- |" + " ---: |" * len(COLUMNS)
    body = []
    for r in rows:
        name = r["method"] + (f" (n={len(r['seeds'])})" if "seeds" in r else "")
        body.append("| " + name + " | " + " | ".join(_cell(r, c.key) for c in COLUMNS) + " |")
    return "\n".join([head, sep, *body])


def pd_table(effects: list[dict]) -> str:
    """+PD minus base per rate, in points, with the paired interval; * where it excludes 0."""
    keys = [c.key for c in RATES]
    lines = ["| method | " + " | ".join(c.label for c in RATES) + " |", "| --- |" + " ---: |" * len(keys)]
    for e in effects:
        cells = []
        for k in keys:
            d = e[k]
            if d["estimate"] is None or d["low"] is None:
                cells.append("n/a")
                continue
            star = "*" if d["excludes_zero"] else ""
            cells.append(f"{100 * d['estimate']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
                         f"{_mark(d.get('method'))}{star}")
        lines.append(f"| {e['method']} → {e['with_pd']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled_agreement(rows: list[dict]) -> dict:
    """Per agreement judge and metric: Cohen's kappa and raw agreement over every answer of every row
    and split that both judges labelled (confusion matrices summed)."""

    out: dict = {}
    for row in rows:
        for run in row.get("runs") or [row]:  # a row over seeds holds its runs
            for judge, splits in (run.get("agreement") or {}).items():
                for result in splits.values():
                    for metric in agreement_metrics():
                        r = result.get(metric, {})
                        if not r.get("available"):
                            continue
                        confusion = out.setdefault(judge, {}).setdefault(metric, {})
                        for a, cells in r["confusion"].items():
                            for b, n in cells.items():
                                confusion[(a, b)] = confusion.get((a, b), 0) + n
    pooled: dict = {}
    for judge, metrics in out.items():
        for metric, confusion in metrics.items():
            pairs = [pair for pair, n in confusion.items() for _ in range(n)]
            pooled.setdefault(judge, {})[metric] = {
                "items": len(pairs), "kappa": cohen_kappa(pairs),
                "agreement": sum(a == b for a, b in pairs) / len(pairs) if pairs else None}
    return pooled


def agreement_text(pooled: dict, judge: str) -> str:
    lines = []
    for other, metrics in pooled.items():
        cells = []
        for metric in agreement_metrics():
            m = metrics.get(metric)
            if m is None or m["kappa"] is None:
                cells.append(f"{metric} n/a")
            else:
                cells.append(f"{metric} κ = {m['kappa']:.2f} (agree {100 * m['agreement']:.1f}% of {m['items']})")
        lines.append(f"- `{other}` against `{judge}`: " + "; ".join(cells))
    return "\n".join(lines)


def plot_report(rows: list[dict], out: Path, title: str) -> Path:
    """One panel per headline rate; each method's bar beside its +PD bar, 95% intervals as error bars,
    per-seed values as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = [("eff_asr", "Efficacy ASR %", "↓ forgotten"), ("gen_asr", "Generality ASR %", "↓ forgotten"),
              ("sarr", "SARR %", "↓ no over-forgetting"), ("rouge_l", "ROUGE-L %", "↑ utility kept"),
              ("degen", "degenerate answers %", "harmful val answers")]
    colour = {"vanilla": "#888888", "base": "#e76f51", "pd": "#2a9d8f"}
    kind = lambda n: "vanilla" if n == "vanilla" else ("pd" if n.endswith("pd") else "base")  # noqa: E731
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 0.42 * len(rows) + 2.2), sharey=True)
    names = [r["method"] for r in rows]
    for ax, (key, label, direction) in zip(axes, panels):
        for i, r in enumerate(rows):
            value = r.get(key)
            ci = (r.get("ci") or {}).get(key)
            # the value is rounded to two decimals, the interval is not: a collapsed interval (83.333..., 83.333...)
            # must not give a negative bar of -0.003
            err = None if ci is None or value is None else [[max(value - ci[0], 0.0)], [max(ci[1] - value, 0.0)]]
            ax.barh(i, value or 0.0, color=colour[kind(r["method"])], xerr=err, capsize=2,
                    error_kw={"elinewidth": 0.8})
            ax.text((value or 0.0) + 1, i, _fmt(value), va="center", fontsize=7)
            seeds = [run.get(key) for run in r.get("runs", []) if run.get(key) is not None]
            if seeds:
                ax.plot(seeds, [i] * len(seeds), "k.", markersize=3)
        ax.set_xlim(0, 115)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"% ({direction})", fontsize=8)
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()  # shared: once for all panels, vanilla on top
    handles = [Patch(color=colour["vanilla"], label="vanilla"), Patch(color=colour["base"], label="method"),
               Patch(color=colour["pd"], label="method + PD")]
    if any(r.get("runs") for r in rows):
        handles.append(plt.Line2D([], [], color="k", marker=".", linestyle="", label="one seed"))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=len(handles))
    fig.suptitle(f"{title}   (bars: 95% bootstrap intervals over records)", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def side_by_side(columns: list[tuple[str, list[dict]]], key: str) -> str:
    """One rate of every method, a column per (header, that table's rows): before and after attacks."""
    lines = ["| method | " + " | ".join(header for header, _ in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for i, row in enumerate(columns[0][1]):
        lines.append(f"| {row['method']} | " + " | ".join(_cell(rows[i], key) for _, rows in columns) + " |")
    return "\n".join(lines)


def attack_summary(rows: list[dict], attacks: dict, curves: dict, level: int = 2) -> str:
    """Markdown: each method's Efficacy and Generality ASR before and after every attack, side by side, and
    each sweep as a curve (ASR against the swept option); headings at `level`."""
    rates = [c for c in RATES if c.key in ("eff_asr", "gen_asr")]
    before = [("no attack", rows)]
    head = "#" * level
    text = f"\n{head} Before and after the attacks\n"
    for c in rates:
        after = [(label, table["rows"]) for label, table in attacks.items()]
        text += f"\n{c.label}:\n\n{side_by_side(before + after, c.key)}\n"
    for name, curve in curves.items():
        points = [(f"{curve['option']}={value}", attacks[label]["rows"])
                  for value, label in zip(curve["values"], curve["labels"])]
        # reports made before curves were named with their option: "NAME: against OPTION"
        title = name if name.endswith(f" against {curve['option']}") else f"{name}: against {curve['option']}"
        text += f"\n{head} {title}\n"
        for c in rates:
            text += f"\n{c.label}:\n\n{side_by_side(before + points, c.key)}\n"
    return text


def attack_text(rows: list[dict], attacks: dict, curves: dict) -> str:
    """Markdown: the summary above, then each attack's table and PD's effect under it."""
    text = attack_summary(rows, attacks, curves)
    for label, table in attacks.items():
        text += f"\n## Under the {label} attack\n\n{markdown_table(table['rows'])}\n"
        if table["pd_effects"]:
            text += f"\nPD's effect under it (+PD minus base, points):\n\n{pd_table(table['pd_effects'])}\n"
    return text


def write_report(rows: list[dict], folder: Path, title: str, meta: dict, stem: str = "report",
                 pd: list[dict] | None = None, attacks: dict | None = None, curves: dict | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"{stem}.md"
    with_sd = any("sd" in r for r in rows)
    notes = ["All values in percent; [low, high]: 95% bootstrap interval over images (an image's questions and "
             "samples resampled together)."]
    counted = any(_mark(n.get("method")) for r in rows for n in (r.get("ci_notes") or {}).values()) or any(
        _mark((e.get(c.key) or {}).get("method")) for e in pd or [] for c in RATES)
    if counted:
        notes.append("†: every resample gave the same value (e.g. 0 harmful answers), so the interval is "
                     "count-based instead: Wilson's over the images (for PD's effect, square-and-add of the "
                     "Wilson intervals of its up and down parts).")
    if with_sd:
        notes.append("Rows with n=k: mean ± sample sd over k unlearning seeds, the interval from a "
                     "hierarchical bootstrap (seeds, then records).")
    if all(r.get("specificity") is None for r in rows):
        notes.append("Spec.: not measured in this run.")
    notes.append("Degen.: share of harmful (val) answers that are empty, wordless, a repetition loop or garbled.")
    judge = meta.get("judge", {}).get("name", "?")
    text = f"# {title}\n\n" + " ".join(notes) + f" Judge: `{judge}`.\n\n{markdown_table(rows)}\n"
    if pd:
        text += ("\n## PD's effect (+PD minus base, points; paired bootstrap; * = the interval excludes 0)\n\n"
                 f"{pd_table(pd)}\n")
    undefined = undefined_notes(rows, pd or [])
    if undefined:
        text += ("\nResamples left out of an interval (no judged answer in the draw): " + "; ".join(undefined)
                 + ".\n")
    if attacks:
        text += attack_text(rows, attacks, curves or {})
    pooled = pooled_agreement(rows)
    if pooled:
        text += f"\n## Judge agreement (all rows and splits)\n\n{agreement_text(pooled, judge)}\n"
    atomic_write_text(md, text)
    buf = io.StringIO()
    columns = [c.key for c in COLUMNS]
    ci_columns = [f"{k}_{end}" for k in columns for end in ("low", "high")]
    writer = csv.DictWriter(buf, fieldnames=["method", *columns, *ci_columns,
                                             *([f"{k}_sd" for k in columns] + ["seeds"] if with_sd else [])])
    writer.writeheader()
    for r in rows:  # means in the columns; intervals, and with seeds their standard deviations, beside
        line = {"method": r["method"], **{k: r[k] for k in columns}}
        for k in columns:
            ci = (r.get("ci") or {}).get(k)
            line[f"{k}_low"], line[f"{k}_high"] = (None, None) if ci is None else ci
        if with_sd:
            line.update({f"{k}_sd": r.get("sd", {}).get(k) for k in columns})
            line["seeds"] = " ".join(str(s) for s in r.get("seeds", []))
        writer.writerow(line)
    atomic_write_text(folder / f"{stem}.csv", buf.getvalue())
    atomic_write_json(folder / f"{stem}.json", {"rows": rows, "pd_effects": pd or [], "agreement": pooled,
                                                **({"attacks": attacks} if attacks else {}),
                                                **({"attack_curves": curves} if curves else {}), **meta})
    png = plot_report(rows, folder / f"{stem}.png", title)
    return [md, folder / f"{stem}.csv", folder / f"{stem}.json", png]
