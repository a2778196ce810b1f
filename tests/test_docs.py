"""The documentation: the site builds in strict mode (a broken link or anchor fails), its reference pages
equal what the code generates, and the README is short and links only to pages that exist."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_site_builds_in_strict_mode(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                          "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "extending" / "index.html").is_file()
    # every page of docs/ is in the site's navigation
    nav = (REPO / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert {p for p in pages if p not in nav} == set()


def test_the_reference_pages_are_what_the_code_generates():
    spec = importlib.util.spec_from_file_location("docs_reference", REPO / "scripts" / "docs_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for name, make in script.PAGES.items():
        committed = (REPO / "docs" / "reference" / name).read_text()
        assert committed == make() + "\n", f"docs/reference/{name} is stale: python scripts/docs_reference.py"
    # what they are generated from shows up in them
    config = (REPO / "docs" / "reference" / "config.md").read_text()
    assert "## `optim`" in config and "| `lr` | `0.0001` |" in config
    methods = (REPO / "docs" / "reference" / "methods.md").read_text()
    assert "`gdpd`: + `pd` (weight 0.5); `retain` 0.5" in methods


def test_the_readme_is_short_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(((?!https?://)[^)#]+)(?:#[^)]*)?\)", text)
    assert links and all((REPO / link).exists() for link in links), [l for l in links if not (REPO / l).exists()]
    # every guide of the site is one link away from the README
    assert {f"docs/{p}" for p in ("families.md", "mini.md", "unlearning.md", "attacks.md", "extending.md",
                                  "reference/config.md")} <= set(links)
