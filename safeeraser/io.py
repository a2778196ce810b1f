"""File helpers shared by every command: atomic writes and JSON / JSON-lines reading."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


class DataError(ValueError):
    """Bad input file. The message names the file, the record and the field."""


class ConfigError(ValueError):
    """A bad setting: the message names the key (and the file) and what it may be."""


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` so that readers see either the old file or the whole new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; outputs are for sharing, so apply the usual umask instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def drop_torn_tail(path: str | os.PathLike) -> None:
    """A writer killed mid-line leaves a partial last row; cut it so that new rows start on a fresh line
    (appended to it, the next row would make both unreadable)."""
    with open(path, "rb+") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows and flush them to disk: used for logs and resumable partial results. A torn last
    line left by a killed writer is cut first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        drop_torn_tail(path)
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def ensure_writable_dir(folder: str | os.PathLike, what: str) -> None:
    """Create `folder` if needed and check that files can be made in it, so that a run fails before its
    work rather than when it saves. `what` names the output in the message."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"{what}: cannot write in folder '{folder}': {exc.strerror or exc}") from None


def decode_utf8(path: str | os.PathLike, data: bytes) -> str:
    """`data` (read from `path`) as text; DataError naming the first byte that is not UTF-8 and its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                        f"(line {line})") from None


def read_json_records(path: str | os.PathLike) -> list[dict]:
    """Read a JSON list of objects, or JSON lines. Raises DataError naming the file and the record."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = decode_utf8(path, path.read_bytes())
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{path}: file is empty")
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        records = data
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: malformed JSON line {lineno} (record {len(records)}): {exc.msg}"
                ) from None
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: record {i}: expected a JSON object, got {type(rec).__name__}")
    return records


def read_jsonl_tolerant(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file written by append_jsonl. A row it finished ends with a newline; a last line
    without one that does not parse was torn by a killed writer (maybe inside a character) and is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    rows = []
    for i, line in enumerate(decode_utf8(path, data[:end]).splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path}: malformed JSON line {i + 1}") from None
    try:
        if data[end:].strip():
            rows.append(json.loads(data[end:].decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    return rows
