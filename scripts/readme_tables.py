"""Copy a mini run's report into results/reference/ and write its tables into the documentation.

    python scripts/readme_tables.py runs/mini-llava/report.json [runs/mini-llava/report-seeds-233-1-2.json ...]

Each report becomes results/reference/<run>/<stem>.json, and the block between
`<!-- table: <run>/<stem> -->` and `<!-- /table -->` (in README.md or a page under docs/) becomes its
table (and PD / agreement sections), rendered by the same code that writes report.md.
tests/test_readme_tables.py checks that every block equals what the reference files render, so the
tables are never edited by hand.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "reference"


def render(report: dict) -> str:
    from safeeraser.pipeline.benchmark_rows import markdown
    from safeeraser.pipeline.report import agreement_text, attack_summary, markdown_table, pd_table

    if report.get("benchmark"):  # another benchmark's grid: one table per split
        return markdown(report["rows"])
    if report.get("attacks"):  # a report with attacks: the ASR before and after each, and the sweeps' curves
        # headings below the page's section (docs/attacks.md: ## The mini under attack)
        return attack_summary(report["rows"], report["attacks"], report.get("attack_curves") or {}, level=3).strip()
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


def documents() -> list[Path]:
    """The files a table block may stand in: the README and the documentation's pages."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def replace_block(readme: str, name: str, body: str) -> str:
    # The body never holds "<!-- ", so a match cannot run on into the next block (an empty block too).
    pattern = re.compile(rf"(<!-- table: {re.escape(name)} -->\n)(?:(?:(?!<!-- ).)*?\n)?(<!-- /table -->)", re.S)
    if not pattern.search(readme):
        raise KeyError(name)
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), readme)


def main(paths: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    texts = {doc: doc.read_text() for doc in documents()}
    for p in map(Path, paths):
        report = json.loads(p.read_text())
        target = REFERENCE / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        holders = [doc for doc, text in texts.items() if f"<!-- table: {block_name(p)} -->" in text]
        if not holders:
            raise SystemExit(f"no document has a block <!-- table: {block_name(p)} --> ... <!-- /table -->")
        for doc in holders:
            texts[doc] = replace_block(texts[doc], block_name(p), render(report))
            print(f"{target}: block {block_name(p)} in {doc.relative_to(REPO)}")
    for doc, text in texts.items():
        if text != doc.read_text():
            doc.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
