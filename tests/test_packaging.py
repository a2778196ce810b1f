"""The wheel: built without setuptools warnings, and holding the package data the toolkit reads."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_builds_quietly_with_its_data(tmp_path):
    import shutil

    # pip builds in the tree: the build/ folder setuptools leaves there is removed if this test made it.
    made_build = not (REPO / "build").exists()
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                              str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    finally:
        if made_build:
            shutil.rmtree(REPO / "build", ignore_errors=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Warning" not in out.stdout + out.stderr
    wheel, = tmp_path.glob("safeeraser-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    fixtures = REPO / "safeeraser" / "specificity" / "fixtures"
    expected = {str(p.relative_to(REPO)) for p in fixtures.rglob("*") if p.is_file()}
    assert expected and expected <= set(names)
    assert not [n for n in names if "__pycache__" in n]


def _lock() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_lock_pins_every_requirement_at_an_allowed_version():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = _lock()
    wanted = [line for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")] + ["pytest>=8"]
    for line in wanted:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not locked"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} breaks {req}"


def test_a_locked_install_has_exactly_the_locked_versions():
    import hashlib
    from importlib import metadata

    import pytest

    marker = Path(sys.prefix) / "installed-from-lock"
    if not marker.exists():
        pytest.skip("this environment was not installed from requirements.lock (scripts/install.sh writes the marker)")
    lock = (REPO / "requirements.lock").read_bytes()
    assert marker.read_text().strip() == hashlib.sha256(lock).hexdigest(), "the lock changed since install: reinstall"
    from packaging.utils import canonicalize_name

    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in _lock().items()
             if installed.get(name) not in (None, version)}
    assert not wrong, f"installed versions differ from the lock: {wrong}"
