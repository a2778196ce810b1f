"""Folders that test fixtures build once per test run, shared by all pytest-xdist workers."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name`, made by `build(folder)` once per test run. Under pytest-xdist every worker has a
    session of its own, so a session fixture would be built once per worker: the tiny vanilla model's
    fine-tune alone is ~15 s of CPU. The workers share one folder instead (the run's base temp folder,
    parent of each worker's), built by the first worker that asks while the others wait on a file lock.
    Tests only read these folders (a writer would race with the other tests of its own worker already)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp(name)
        build(out)
        return out
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent
    out, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed midway
            out.mkdir()
            build(out)
            done.touch()
    return out
