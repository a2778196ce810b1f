"""The documentation's mini tables are rendered from the reference reports (scripts/readme_tables.py)."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_table_block_equals_its_reference_report():
    script = _script()
    found = 0
    for doc in script.documents():
        text = doc.read_text()
        blocks = re.findall(r"<!-- table: (\S+) -->\n((?:(?!<!-- ).)*?)\n<!-- /table -->", text, re.S)
        assert len(blocks) == text.count("<!-- table: "), f"{doc}: a table block is empty or malformed"
        for name, body in blocks:
            report = json.loads((script.REFERENCE / f"{name}.json").read_text())
            assert body == script.render(report), f"{doc}: block {name} differs from results/reference/{name}.json"
        found += len(blocks)
    assert found >= 5, "the documentation lost its generated tables"


def test_reference_reports_record_what_made_them():
    for path in (REPO / "results" / "reference").rglob("*.json"):
        report = json.loads(path.read_text())
        prov = report["provenance"]
        assert prov["code"]["commit"] and prov["packages"]["torch"] and prov["torch_threads"], path
        assert report["config"]["threads"] == prov["torch_threads"], path
