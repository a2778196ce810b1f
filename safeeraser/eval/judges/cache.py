"""Judge replies kept on disk, so that a rerun or a resumed run asks only for what is new.

An append-only JSON-lines file, one row per reply, flushed as each reply arrives: a run killed
mid-way keeps every reply it received. Only raw replies are stored (never the prompt, never a key),
so a better parser can re-read them without new calls.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO

from safeeraser.io import DataError, drop_torn_tail, read_jsonl_tolerant


def cache_key(model: str, prompt_version: str, prompt: str) -> str:
    payload = json.dumps([model, prompt_version, prompt], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgmentCache:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._rows: dict[str, dict] = {}
        self._fh: IO[str] | None = None
        if self.path.is_dir():
            raise DataError(f"{self.path}: the judge cache is a folder; give a file path (--cache_file)")
        if self.path.exists():
            drop_torn_tail(self.path)
            for lineno, row in enumerate(read_jsonl_tolerant(self.path), 1):
                # A row without its key or reply is not ours: most likely --cache_file names another file
                # (the answers, the dataset), which appending to would corrupt. Stop rather than skip.
                if not isinstance(row, dict) or not isinstance(row.get("key"), str) or not isinstance(row.get("reply"), str):
                    raise DataError(f"{self.path}: row {lineno}: not a judge cache row (needs 'key' and 'reply'); "
                                    "is --cache_file the right file?")
                self._rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self._rows.get(key)

    def put(self, key: str, reply: str, **fields) -> None:
        row = {"key": key, "reply": reply, **fields}
        self._rows[key] = row
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        # One open handle, flushed per row: append_jsonl's open+fsync per row would stall the event loop
        # for every reply, and a flushed row already survives the process being killed.
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "JudgmentCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
