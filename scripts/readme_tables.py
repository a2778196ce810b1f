"""Copy a mini run's report into results/reference/ and write its tables into the README.

    python scripts/readme_tables.py runs/mini-llava/report.json [runs/mini-llava/report-seeds-233-1-2.json ...]

Each report becomes results/reference/<run>/<stem>.json, and the README block between
`<!-- table: <run>/<stem> -->` and `<!-- /table -->` becomes its table (and PD / agreement sections),
rendered by the same code that writes report.md. tests/test_readme_tables.py checks that the README
equals what the reference files render, so the README's tables are never edited by hand.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference"


def render(report: dict) -> str:
    from safeeraser.pipeline.report import agreement_text, attack_summary, markdown_table, pd_table

    if report.get("attacks"):  # a report with attacks: the ASR before and after each, and the sweeps' curves
        # headings below the README section's own (### The mini under attack)
        return attack_summary(report["rows"], report["attacks"], report.get("attack_curves") or {}, level=4).strip()
    parts = [markdown_table(report["rows"])]
    if report.get("pd_effects"):
        parts.append("PD's effect (+PD minus base, points; paired bootstrap over images; * = the interval "
                     "excludes 0; † count-based where every resample agrees):\n\n" + pd_table(report["pd_effects"]))
    if report.get("agreement"):
        parts.append("Judge agreement over all rows and splits:\n\n"
                     + agreement_text(report["agreement"], report["judge"]["name"]))
    return "\n\n".join(parts)


def block_name(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def replace_block(readme: str, name: str, body: str) -> str:
    # The body never holds "<!-- ", so a match cannot run on into the next block (an empty block too).
    pattern = re.compile(rf"(<!-- table: {re.escape(name)} -->\n)(?:(?:(?!<!-- ).)*?\n)?(<!-- /table -->)", re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no block <!-- table: {name} --> ... <!-- /table -->")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), readme)


def main(paths: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    readme = (REPO / "README.md").read_text()
    for p in map(Path, paths):
        report = json.loads(p.read_text())
        target = REFERENCE / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        readme = replace_block(readme, block_name(p), render(report))
        print(f"{target}: README block {block_name(p)}")
    (REPO / "README.md").write_text(readme)


if __name__ == "__main__":
    main(sys.argv[1:])
