"""The experiment's report as one self-contained HTML page: the tables and the chart of report.md, and an
answer browser. Researchers debug unlearning by reading answers (empty, looping, garbled, refusing): the
browser shows, per harmful question of each split, its image, the vanilla model's answers and every run's
(each method with and without PD, each seed), with the judge's labels and the degenerate flag, filterable
by method, category, split and label, and searchable. Everything (data, thumbnails, chart, script) is in
the file: no server, no network; the filters are also read from the address (#method=ga&label=harmful),
so a filtered view can be shared.

    safeeraser report --html runs/mini-llava            # writes runs/mini-llava/report.html
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf
from PIL import Image

from safeeraser.data.records import category_of, resolve_image
from safeeraser.eval.degenerate import is_degenerate
from safeeraser.io import ConfigError, DataError, atomic_write_text, read_json_records
from safeeraser.pipeline.html_page import PAGE
from safeeraser.pipeline.report import attack_summary, markdown_table, pd_table

MODEL_RESPONSES = ("model_response1", "model_response2", "model_response3")
THUMBNAIL = 160  # pixels on the longer side: a page of thousands of questions stays a few MB
SPLITS = {"train": "forget (Efficacy)", "val": "held out (Generality)"}


def thumbnail(path: Path) -> str:
    """The image at `path` as a small JPEG data URI ("" when it cannot be read: the page shows no image)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL, THUMBNAIL))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except Exception:  # a missing or broken image is the benchmark's problem, already counted elsewhere
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _labels(pair: dict, response: str) -> dict:
    return {"asr": pair.get(f"gpt_result_ASR_{response}"), "rr": pair.get(f"gpt_result_RR_{response}")}


def _key(record: dict) -> tuple:
    """What a record is, in the dataset and in any run's answers to it: its image and its questions."""
    return str(record.get("image_path")), tuple(str(p.get("question")) for p in record.get("unsafe_pairs") or [])


def _by_record(rows: list[dict]) -> dict[tuple, list[dict]]:
    """A run's answered records by what they answer (a run leaves out the records it skipped: matched by
    position, every later question would show the next record's answers)."""
    out: dict[tuple, list[dict]] = {}
    for row in rows:
        out.setdefault(_key(row), []).append(row)
    return out


def answer_entries(runner, max_records: int = 0) -> tuple[list[dict], dict]:
    """(runs, {entries, images}): the runs shown (method, seed, label, with_pd), one entry per harmful
    question of each split (its image, question, category and, per run, its answers with their labels and
    degenerate flags) and the entries' image thumbnails. Read from the judged answers of each run (the
    experiment judge's files); `max_records` > 0 keeps each split's first records."""
    runs = []
    judged: dict[tuple[int, str], dict[tuple, list[dict]]] = {}
    for run in runner.runs():
        seeds = [s for s in runner.seeds_of(run.method) if s is not None]
        label = run.method + (f" (seed {run.seed})" if run.seed is not None and len(seeds) > 1 else "")
        runs.append({"label": label, "method": run.method, "pd": run.method.endswith("pd"), "seed": run.seed})
        for split in SPLITS:
            _, path = runner.judged(runner.infer_path(run.tag, split))
            judged[len(runs) - 1, split] = _by_record(read_json_records(path))
    entries = []
    for split in SPLITS:
        data_file = Path(runner.cfg.data[split])
        records = read_json_records(data_file)
        if max_records > 0:
            records = records[:max_records]
        seen: dict[tuple, int] = {}  # records that repeat an image and its questions: their answers in order
        for i, record in enumerate(records):
            key = _key(record)
            nth = seen[key] = seen.get(key, -1) + 1
            image = str(resolve_image(str(record["image_path"]), data_file))  # one thumbnail per file
            for j, pair in enumerate(record["unsafe_pairs"]):
                answers = []
                for r in range(len(runs)):
                    rows = judged[r, split].get(key, [])
                    if nth >= len(rows):
                        continue  # a record the run skipped
                    got = rows[nth]["unsafe_pairs"][j]
                    texts = [str(got.get(k, "")) for k in MODEL_RESPONSES]
                    answers.append({"run": r, "texts": texts,
                                    "labels": [_labels(got, k) for k in MODEL_RESPONSES],
                                    "degenerate": [is_degenerate(t) for t in texts],
                                    "sd": str(got.get("sd_response", "")),
                                    "sd_label": got.get("gpt_result_RR_sd_response")})
                entries.append({"split": split, "record": i, "pair": j, "image": image,
                                "path": str(record["image_path"]), "question": pair["question"],
                                "category": category_of(str(record["image_path"])) or "other", "answers": answers})
    images = dict.fromkeys(e["image"] for e in entries)  # each image once, however many questions it has
    return runs, {"entries": entries, "images": {image: thumbnail(Path(image)) for image in images}}


def script_json(data) -> str:
    """`data` as JSON that is safe inside a <script> element whatever the answers hold: no <, > or & left
    (`<!--<script>` in a model's answer would otherwise swallow the page's own script)."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def md_table_html(text: str) -> str:
    """A Markdown pipe table (as report.md writes it) as an HTML table; the cells escaped."""
    lines = [line for line in text.strip().splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return ""

    def cells(line: str) -> list[str]:
        return [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]

    head = "".join(f"<th>{c}</th>" for c in cells(lines[0]))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells(line)) + "</tr>" for line in lines[2:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_html(text: str) -> str:
    """report.md's sections (headings, notes, pipe tables) as HTML."""
    out, table = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            out.append(md_table_html("\n".join(table)))
            table = []
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def tables_html(report: dict) -> str:
    parts = [md_table_html(markdown_table(report["rows"]))]
    if report.get("pd_effects"):
        parts.append("<h2>PD's effect (+PD minus base, points; paired bootstrap; * = the interval excludes 0)</h2>"
                     + md_table_html(pd_table(report["pd_effects"])))
    if report.get("attacks"):
        parts.append(md_html(attack_summary(report["rows"], report["attacks"], report.get("attack_curves") or {})))
    return "\n".join(parts)


def write_html(runner, report_json: Path, out: Path | None = None, max_records: int = 0) -> Path:
    """report_json's tables and chart, and the answer browser over the runner's runs, as one page."""
    report = json.loads(Path(report_json).read_text(encoding="utf-8"))
    out = Path(out) if out else Path(report_json).with_suffix(".html")
    png = Path(report_json).with_suffix(".png")
    chart = ("data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()) if png.exists() else ""
    runs, browser = answer_entries(runner, max_records)
    data = {"runs": runs, "splits": SPLITS, **browser}
    slots = {"title": html.escape(f"SafeEraser: {runner.cfg.name}"),
             "judge": html.escape(str(report.get("judge", {}).get("name", "?"))),
             "tables": tables_html(report),
             "chart": f'<img class="chart" alt="the report\'s chart" src="{chart}">' if chart else "",
             "data": script_json(data)}
    # one pass: a slot's text (a model's answer, a config's name) is never read as another slot
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: slots[m.group(1)], PAGE)
    atomic_write_text(out, page)
    return out


def runner_of(report_json: Path):
    """The Runner of the experiment a report was made by (its config is in the report): it names the
    answers and judged files the browser reads."""
    from safeeraser.pipeline.experiment import ExperimentConfig, Runner  # deferred: experiment imports this module

    report = json.loads(Path(report_json).read_text(encoding="utf-8"))
    cfg = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), report["config"])
    cfg.workdir = str(Path(report_json).parent)  # where the report is, whatever the folder was called then
    return Runner(cfg, log=lambda *_: None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safeeraser report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="an experiment's work folder (runs/NAME), holding its report")
    p.add_argument("--html", action="store_true", required=True, help="write the report as one HTML page")
    p.add_argument("--report", default="report", help="the report's stem in RUN_DIR (report-seeds-233-1-2, ...)")
    p.add_argument("--out", default=None, help="the page (default: RUN_DIR/REPORT.html)")
    p.add_argument("--max_records", type=int, default=0, help="only each split's first N records in the browser")
    return p


def main(argv: list[str] | None = None) -> int:
    from safeeraser.pipeline.experiment import StepMissing  # deferred: experiment imports this module

    args = build_parser().parse_args(argv)
    report_json = Path(args.run_dir) / f"{args.report}.json"
    if not report_json.is_file():
        print(f"error: {report_json} not found (run `safeeraser run` first, or name the report with --report)",
              file=sys.stderr)
        return 2
    try:
        out = write_html(runner_of(report_json), report_json, args.out and Path(args.out), args.max_records)
    except (ConfigError, DataError, StepMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
