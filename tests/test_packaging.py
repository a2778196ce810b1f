"""The wheel: built without setuptools warnings, and holding the package data the toolkit reads."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_builds_quietly_with_its_data(tmp_path):
    # Copy-free build into tmp_path; the build folder setuptools writes is kept out of the repo.
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Warning" not in out.stdout + out.stderr
    wheel, = tmp_path.glob("safeeraser-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    fixtures = REPO / "safeeraser" / "specificity" / "fixtures"
    expected = {str(p.relative_to(REPO)) for p in fixtures.rglob("*") if p.is_file()}
    assert expected and expected <= set(names)
    assert not [n for n in names if "__pycache__" in n]
