"""Open a page in Debian's Chromium, headless, from the command line (no driver): the DOM after its
scripts ran, what it wrote to the console, and a screenshot. Tests that need it skip where Chromium is
not installed, unless SAFEERASER_REQUIRE_BROWSER=1 (CI installs it: scripts/install.sh)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--virtual-time-budget=5000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("SAFEERASER_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (SAFEERASER_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


def dom(page: Path, fragment: str = "") -> tuple[str, list[str]]:
    """(the page's DOM once its scripts ran, the console messages Chromium logged)."""
    out = subprocess.run([chromium(), *FLAGS, "--enable-logging=stderr", "--v=0", "--dump-dom",
                          page.resolve().as_uri() + (f"#{fragment}" if fragment else "")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line]
    return out.stdout, console


def screenshot(page: Path, out: Path, fragment: str = "", size: str = "1280,1000") -> Path:
    subprocess.run([chromium(), *FLAGS, f"--window-size={size}", f"--screenshot={out}",
                    page.resolve().as_uri() + (f"#{fragment}" if fragment else "")],
                   capture_output=True, text=True, timeout=120, check=True)
    return out


def count(html: str) -> tuple[int, int]:
    """(questions matching, questions drawn) from the answer browser's counter."""
    tag = re.search(r'<span id="count"[^>]*>', html)
    assert tag, "the answer browser drew no counter"
    values = dict(re.findall(r'data-(shown|matching)="(\d+)"', tag.group(0)))
    return int(values["matching"]), int(values["shown"])
