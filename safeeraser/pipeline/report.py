"""The experiment's table as Markdown, CSV, JSON and a chart."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from safeeraser.io import atomic_write_json, atomic_write_text


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _cell(row: dict, key: str) -> str:
    sd = row.get("sd", {}).get(key)
    return _fmt(row[key]) if sd is None else f"{_fmt(row[key])} ± {sd:.1f}"


def markdown_table(rows: list[dict]) -> str:
    from safeeraser.pipeline.experiment import COLUMNS

    head = "| method | " + " | ".join(label for _, label in COLUMNS) + " |"
    sep = "| --- |" + " ---: |" * len(COLUMNS)
    body = []
    for r in rows:
        name = r["method"] + (f" (n={len(r['seeds'])})" if "seeds" in r else "")
        body.append("| " + name + " | " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |")
    return "\n".join([head, sep, *body])


def plot_report(rows: list[dict], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("gen_asr", "Generality ASR % (↓ forgotten)"), ("sarr", "SARR % (↓ no over-forgetting)"),
              ("rouge_l", "ROUGE-L % (↑ utility kept)"), ("specificity", "Specificity % (↑)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.45 * len(rows) + 1.8), sharey=True)
    names = [r["method"] for r in rows]
    colours = ["#888888" if n == "vanilla" else ("#2a9d8f" if n.endswith("pd") else "#e76f51") for n in names]
    for ax, (key, label) in zip(axes, panels):
        values = [r[key] if r[key] is not None else 0.0 for r in rows]
        errors = [r.get("sd", {}).get(key) or 0.0 for r in rows]
        ax.barh(range(len(rows)), values, color=colours, xerr=errors if any(errors) else None, capsize=2)
        for i, r in enumerate(rows):
            ax.text(values[i] + 1, i, _fmt(r[key]), va="center", fontsize=8)
        ax.set_xlim(0, 115)
        ax.set_title(label, fontsize=10)
    axes[0].set_yticks(range(len(rows)), names)
    axes[0].invert_yaxis()  # shared: once for all panels, vanilla on top
    fig.suptitle(f"{title}   (grey: vanilla, orange: method, green: method + PD)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(rows: list[dict], folder: Path, title: str, meta: dict) -> list[Path]:
    from safeeraser.pipeline.experiment import COLUMNS

    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "report.md"
    with_sd = any("sd" in r for r in rows)
    note = " Rows with n=k: mean ± sample sd over k unlearning seeds." if with_sd else ""
    atomic_write_text(md, f"# {title}\n\nAll values in percent.{note}\n\n{markdown_table(rows)}\n")
    buf = io.StringIO()
    columns = [k for k, _ in COLUMNS]
    writer = csv.DictWriter(buf, fieldnames=["method", *columns, *([f"{k}_sd" for k in columns] + ["seeds"]
                                                                   if with_sd else [])])
    writer.writeheader()
    for r in rows:  # means in the columns; with seeds, their standard deviations and the seeds beside
        line = {"method": r["method"], **{k: r[k] for k in columns}}
        if with_sd:
            line.update({f"{k}_sd": r.get("sd", {}).get(k) for k in columns})
            line["seeds"] = " ".join(str(s) for s in r.get("seeds", []))
        writer.writerow(line)
    atomic_write_text(folder / "report.csv", buf.getvalue())
    atomic_write_json(folder / "report.json", {"rows": rows, **meta})
    png = plot_report(rows, folder / "report.png", title)
    return [md, folder / "report.csv", folder / "report.json", png]
