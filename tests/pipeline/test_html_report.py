"""The HTML report: one self-contained page with the tables, the chart and a browser of every run's
answers, checked against the judged files it is read from and in a real headless browser."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from safeeraser.pipeline.experiment import run_experiment
from safeeraser.pipeline.html_report import md_table_html

from tests.pipeline import browser
from tests.pipeline.test_attack_steps import _config as grid_config


def test_a_markdown_table_becomes_an_html_table_with_its_cells_escaped():
    out = md_table_html("| method | Eff. ASR↓ |\n| --- | ---: |\n| ga<b> | 1.0 [0.0, 2.0]† |\n")
    assert out == ("<table><thead><tr><th>method</th><th>Eff. ASR↓</th></tr></thead><tbody>"
                   "<tr><td>ga&lt;b&gt;</td><td>1.0 [0.0, 2.0]†</td></tr></tbody></table>")


@pytest.fixture(scope="module")
def grid(tmp_path_factory, vanilla_dir, mini_dir):
    """A small grid (vanilla, ga, gapd) run once: its work folder."""
    tmp = tmp_path_factory.mktemp("html")
    run_experiment(grid_config(tmp, vanilla_dir, mini_dir, attacks=[]), log=lambda *_: None)
    return tmp / "work", mini_dir


def _page_data(page) -> dict:
    text = page.read_text()
    start = text.index('<script id="data" type="application/json">') + len('<script id="data" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)].replace("<\\/", "</"))


@pytest.mark.heavy
def test_the_run_writes_a_page_holding_every_runs_answers_and_labels(grid):
    work, mini_dir = grid
    page = work / "report.html"
    data = _page_data(page)
    assert [r["method"] for r in data["runs"]] == ["vanilla", "ga", "gapd"]
    records = {split: json.loads((mini_dir / f"all_{split}.json").read_text()) for split in ("train", "val")}
    pairs = sum(len(r["unsafe_pairs"]) for split in records for r in records[split])
    assert len(data["entries"]) == pairs and all(len(e["answers"]) == 3 for e in data["entries"])
    assert set(data["images"]) == {str(mini_dir / r["image_path"]) for split in records for r in records[split]}
    assert all(uri.startswith("data:image/jpeg;base64,") for uri in data["images"].values())
    # an entry's answers and labels are the judged file's
    (judged,) = [f for f in (work / "eval").glob("ga-*_val_*_keyword_*_rr.json")]
    first = json.loads(judged.read_text())[0]["unsafe_pairs"][0]
    entry = next(e for e in data["entries"] if e["split"] == "val" and e["record"] == 0 and e["pair"] == 0)
    ga = next(a for a in entry["answers"] if data["runs"][a["run"]]["method"] == "ga")
    assert ga["texts"] == [first[f"model_response{k}"] for k in (1, 2, 3)]
    assert [x["asr"] for x in ga["labels"]] == [first[f"gpt_result_ASR_model_response{k}"] for k in (1, 2, 3)]
    assert "| gapd |" not in page.read_text() and "<td>gapd</td>" in page.read_text()  # the table as HTML
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # nothing fetched: offline


@pytest.mark.heavy
def test_the_page_loads_in_chromium_and_its_filters_change_the_rows(grid, tmp_path):
    work, _ = grid
    page = work / "report.html"
    data = _page_data(page)
    html, console = browser.dom(page)
    assert 'data-ready="1"' in html  # the script ran to its end
    assert not [line for line in console if "error" in line.lower() or "uncaught" in line.lower()], console
    total = len(data["entries"])
    assert browser.count(html) == (total, min(total, 300))
    assert html.count('class="entry"') == min(total, 300)
    val = sum(e["split"] == "val" for e in data["entries"])
    html, _ = browser.dom(page, "split=val")
    assert browser.count(html)[0] == val < total and html.count('class="entry"') == val
    category = data["entries"][0]["category"]
    html, _ = browser.dom(page, f"category={category}&split=train")
    assert browser.count(html)[0] == sum(e["category"] == category and e["split"] == "train" for e in data["entries"])
    question = data["entries"][-1]["question"]
    html, _ = browser.dom(page, "q=" + question.replace(" ", "+"))
    assert browser.count(html)[0] == sum(question.lower() in e["question"].lower() for e in data["entries"]) >= 1
    # a method's filter keeps its runs and the vanilla model's: three rows per question for ga and ga+PD
    html, _ = browser.dom(page, "method=ga&split=val")
    answers = html[html.index('<div id="entries">'):]
    assert answers.count("<tr><td>ga</td>") == answers.count("<tr><td>gapd</td>") == val
    assert answers.count("<tr><td>vanilla</td>") == val
    shot = browser.screenshot(page, tmp_path / "page.png")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert (np.abs(pixels[:40].astype(int) - (35, 57, 93)).sum(-1) < 30).mean() > 0.5  # the header bar
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text and tables drawn, not a blank page


def test_the_embedded_data_survives_any_answer_text():
    from safeeraser.pipeline.html_report import script_json

    hostile = {"texts": ["<!--<script>", "</script><script>alert(1)</script>", "a & b > c"]}
    text = script_json(hostile)
    assert not set(text) & set("<>&") and json.loads(text) == hostile


def test_answers_are_matched_to_their_questions_when_a_run_skipped_a_record():
    from safeeraser.pipeline.html_report import _by_record, _key

    records = [{"image_path": f"images/Sex/{i}.png", "unsafe_pairs": [{"question": f"q{i}"}]} for i in range(3)]
    answered = [records[0], records[2]]  # the run skipped record 1
    rows = _by_record(answered)
    assert rows.get(_key(records[1])) is None and rows[_key(records[2])] == [records[2]]
