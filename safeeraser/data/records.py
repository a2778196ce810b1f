"""SafeEraser records: loading, validation against the benchmark schema, image path resolution."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from safeeraser.io import DataError, read_json_records

log = logging.getLogger(__name__)

CATEGORIES = ("Violence", "Weapon", "Privacy", "Sex", "HateSpeech", "IllegalActivity")
UNHARM_KEYS = ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2")


@dataclass
class Record:
    """One benchmark record. `raw` is the record as read (extra keys kept); paths are resolved."""

    index: int
    raw: dict
    image: Path
    sd_image: Path
    category: str | None  # None when the folder is not one of CATEGORIES

    @property
    def unsafe_pairs(self) -> list[dict]:
        return self.raw["unsafe_pairs"]

    def unharm_pairs(self) -> list[tuple[str, dict]]:
        return [(k, self.raw[k]) for k in UNHARM_KEYS if k in self.raw]


def category_of(image_path: str) -> str | None:
    folder = Path(str(image_path).replace("\\", "/")).parent.name
    return folder if folder in CATEGORIES else None


def resolve_image(value: str, data_file: Path) -> Path:
    """Relative paths resolve against the data file's folder first, then the working directory."""
    p = Path(value)
    if p.is_absolute():
        return p
    beside = data_file.parent / p
    if beside.exists():
        return beside
    return Path(os.getcwd()) / p


def _is_image_file(path: Path) -> str | None:
    """Return None if `path` is a readable image, else a short reason."""
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a file"
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # PIL raises many types; all mean "not an image"
        return f"is not a readable image ({type(exc).__name__})"
    return None


class _Checker:
    def __init__(self, path: Path, index: int):
        self.where = f"{path}: record {index}"

    def fail(self, field: str, problem: str):
        raise DataError(f"{self.where}: field '{field}': {problem}")

    def str_field(self, obj: dict, key: str, prefix: str = "") -> str:
        name = f"{prefix}{key}"
        if key not in obj:
            self.fail(name, "missing")
        if not isinstance(obj[key], str):
            self.fail(name, f"expected a string, got {type(obj[key]).__name__}")
        return obj[key]


def validate_record(
    raw: dict,
    index: int,
    data_file: Path,
    *,
    answers: tuple[str, ...] = ("model_response", "sd_response"),
    check_images: bool = True,
) -> Record:
    """Check one record against SPEC.md. `answers` are the keys every unsafe pair must have."""
    c = _Checker(data_file, index)
    if not isinstance(raw, dict):
        raise DataError(f"{c.where}: expected a JSON object, got {type(raw).__name__}")
    paths = {}
    for key in ("image_path", "SDImage_path"):
        value = c.str_field(raw, key)
        if not value.strip():
            c.fail(key, "empty path")
        resolved = resolve_image(value, data_file)
        if check_images:
            problem = _is_image_file(resolved)
            if problem:
                c.fail(key, f"image '{value}' {problem}")
        paths[key] = resolved
    pairs = raw.get("unsafe_pairs")
    if pairs is None:
        c.fail("unsafe_pairs", "missing")
    if not isinstance(pairs, list):
        c.fail("unsafe_pairs", f"expected a list, got {type(pairs).__name__}")
    if not pairs:
        c.fail("unsafe_pairs", "empty list")
    for j, pair in enumerate(pairs):
        prefix = f"unsafe_pairs[{j}]."
        if not isinstance(pair, dict):
            c.fail(f"unsafe_pairs[{j}]", f"expected an object, got {type(pair).__name__}")
        c.str_field(pair, "question", prefix)
        for key in answers:
            c.str_field(pair, key, prefix)
    for key in UNHARM_KEYS:
        if key not in raw:
            c.fail(key, "missing")
        pair = raw[key]
        if not isinstance(pair, dict):
            c.fail(key, f"expected an object, got {type(pair).__name__}")
        c.str_field(pair, "Question", f"{key}.")
        c.str_field(pair, "Prediction", f"{key}.")
    category = category_of(raw["image_path"])
    if category is None:
        log.warning(
            "%s: image_path folder '%s' is not one of %s; the judge will use its generic template",
            c.where, Path(raw["image_path"]).parent.name, ", ".join(CATEGORIES),
        )
    return Record(index, raw, paths["image_path"], paths["SDImage_path"], category)


def load_benchmark(
    path: str | os.PathLike,
    *,
    answers: tuple[str, ...] = ("model_response", "sd_response"),
    check_images: bool = True,
) -> list[Record]:
    """Load and validate a SafeEraser file (JSON list or JSON lines). Raises DataError on the first bad record."""
    path = Path(path)
    raws = read_json_records(path)
    if not raws:
        raise DataError(f"{path}: no records")
    return [validate_record(r, i, path, answers=answers, check_images=check_images) for i, r in enumerate(raws)]
