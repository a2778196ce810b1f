"""What made an output: the code, the environment and the model it came from.

Every output that a later step reuses records these, so that a step made by other code, another
environment or another base model is never reused silently. Light imports only: input checks run
before torch is imported.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from safeeraser.numerics import describe

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
CONFIG_FILES = ("config.json", "adapter_config.json")
PACKAGES = ("torch", "transformers", "tokenizers", "peft", "accelerate", "safetensors", "numpy", "pillow")


def digest(obj) -> str:
    """sha256 of a JSON value with sorted keys: equal for equal content, whatever the key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The git commit of the toolkit and whether the tree had uncommitted changes; `unknown` outside git."""
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(REPO_ROOT), *a], capture_output=True, text=True,  # noqa: E731
                                        timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def torch_threads() -> int | None:
    """torch's intra-op threads when torch is already loaded (results depend on them on a CPU)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS")
    return int(env) if env and env.isdigit() else None


def environment() -> dict:
    return {"code": code_version(), "packages": package_versions(), "torch_threads": torch_threads(),
            "numerics": describe()}


def model_identity(model_path: str | os.PathLike) -> dict:
    """A base model's identity: its model_type and the hash of its config.json (shapes, vocabulary,
    special ids), read without loading weights. A hub id that is not a local folder is identified by
    its name only."""
    path = Path(model_path)
    config = path / "config.json"
    if not config.is_file():
        return {"model_path": str(model_path), "model_type": None, "config_sha256": None}
    data = json.loads(config.read_text(encoding="utf-8"))
    # Fields that name the writer, not the model, would make one model look like two.
    for key in ("transformers_version", "_name_or_path", "_commit_hash"):
        data.pop(key, None)
    return {"model_path": str(model_path), "model_type": data.get("model_type"), "config_sha256": digest(data)}


def weights_identity(checkpoint_path: str | os.PathLike | None) -> dict | None:
    """A model or adapter folder (or weights file): its path, its config files' sha256 and its weight
    files' size and modification time (hashing gigabytes of weights at every start would cost more
    than it protects against). Retrained in place, it is another identity."""
    if not checkpoint_path:
        return None
    path = Path(checkpoint_path)
    files = [path] if path.is_file() else sorted(
        f for f in path.iterdir() if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name in CONFIG_FILES))
    identity = {}
    for f in files:
        if f.name in CONFIG_FILES:
            identity[f.name] = file_sha256(f)
        else:
            st = f.stat()
            identity[f.name] = f"{st.st_size} bytes, mtime_ns {st.st_mtime_ns}"
    return {"path": str(path.resolve()), "files": identity}


def folder_identity(folder: str | os.PathLike) -> str | None:
    """A data folder's every file by its path in it, size and modification time, as one digest (None: no
    folder): a benchmark written again in place is other data, never matched with scores of the old.
    Hidden files and folders are left out: what readers write beside the data (the parquet benchmarks'
    image files in .safeeraser-images) is not the data."""
    root = Path(folder)
    if not root.is_dir():
        return None
    entries = []
    for here, folders, files in os.walk(root):
        folders[:] = [d for d in folders if not d.startswith(".")]  # never walked into (thousands of images)
        for name in files:
            if not name.startswith("."):
                st = (Path(here) / name).stat()
                entries.append([str((Path(here) / name).relative_to(root)), st.st_size, st.st_mtime_ns])
    return digest(sorted(entries, key=lambda e: Path(e[0])))  # in the order of the paths' parts, as named before
