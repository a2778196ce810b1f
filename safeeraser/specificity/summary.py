"""The Specificity table: each benchmark's headline score and their average, saying which benchmarks
the average leaves out and why."""
from __future__ import annotations


def summarize(results: dict[str, dict], backend: str) -> dict:
    """`results` maps benchmark name -> its scores (score, metric, and unavailable when score is None)."""
    table = {}
    for name, result in results.items():
        entry = {"score": result["score"], "metric": result["metric"]}
        if result["score"] is None:
            entry["unavailable"] = result.get("unavailable", "no score")
        table[name] = entry
    scored = [name for name, entry in table.items() if entry["score"] is not None]
    average = sum(table[n]["score"] for n in scored) / len(scored) if scored else None
    note = f"average over {len(scored)} of {len(table)} benchmarks"
    left_out = [f"{name}: {entry['unavailable']}" for name, entry in table.items() if entry["score"] is None]
    if left_out:
        note += "; without " + "; ".join(left_out)
    return {"backend": backend, "benchmarks": table, "average": average, "averaged_over": scored, "note": note}


def format_table(summary: dict) -> str:
    lines = [f"{'benchmark':<10} {'score':>7}  metric"]
    for name, entry in summary["benchmarks"].items():
        score = "n/a" if entry["score"] is None else f"{entry['score']:.2f}"
        lines.append(f"{name:<10} {score:>7}  {entry['metric']}")
    average = "n/a" if summary["average"] is None else f"{summary['average']:.2f}"
    lines.append(f"{'average':<10} {average:>7}  {summary['note']}")
    return "\n".join(lines)
