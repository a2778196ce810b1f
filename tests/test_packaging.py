"""The wheel: built without setuptools warnings, and holding the package data the toolkit reads."""
from __future__ import annotations

import os
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
    # config/ ships as safeeraser/config/, and an install outside the checkout reads its configs from there
    configs = {f"safeeraser/{p.relative_to(REPO)}" for p in (REPO / "config").rglob("*") if p.is_file()}
    assert {"safeeraser/config/forget_tiny.yaml", "safeeraser/config/experiment/mini.yaml",
            "safeeraser/config/accelerate/deepspeed_zero2.yaml"} <= configs <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel unpacked is its installation
    probe = ("import safeeraser\n"
             "from safeeraser.train.config import CONFIG_DIR, load_config\n"
             "from safeeraser.pipeline.experiment import load_experiment\n"
             "print(safeeraser.__file__, CONFIG_DIR, load_config('forget_tiny.yaml', validate_paths=False).optim.lr,\n"
             "      load_experiment('mini.yaml').name)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    package, config_dir, lr, name = run.stdout.split()
    assert package.startswith(str(site)) and config_dir == str(site / "safeeraser" / "config")
    assert (float(lr), name) == (5e-3, "mini-llava")


def _lock() -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _dev_extra() -> list[str]:
    """setup.py's `dev` extra (what CI installs besides the requirements)."""
    import ast
    import re

    line = re.search(r'"dev":\s*(\[[^\]]*\])', (REPO / "setup.py").read_text())
    return ast.literal_eval(line.group(1))


def test_lock_pins_every_requirement_at_an_allowed_version():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = _lock()
    wanted = [line for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")] + _dev_extra()
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
