"""A lock around a file that several steps append to (a judge's reply cache, MM-Vet's grades): the steps of
a remote launcher run side by side."""
from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on `path` (made if missing) while the block runs."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
