"""What the benchmarks' readers and mini generators share: checks that name the file, the record and the
field, image structs {bytes, path} as Hugging Face's parquet files hold them, and a split read from or
written to the released `SPLIT/train-*.parquet` layout."""
from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from safeeraser.io import DataError, atomic_write_bytes


def need(cond: bool, where: str, field: str, msg: str) -> None:
    if not cond:
        raise DataError(f"{where}: field '{field}': {msg}")


def check_image(image, where: str, field: str) -> None:
    from PIL import Image

    need(isinstance(image, dict) and isinstance(image.get("bytes"), (bytes, bytearray)), where, field,
         "an image struct {bytes, path} with the image's bytes")
    try:
        with Image.open(io.BytesIO(image["bytes"])) as im:
            im.verify()
    except Exception as exc:  # PIL raises several kinds for bytes that are no image
        raise DataError(f"{where}: field '{field}': the bytes are not an image ({type(exc).__name__})") from None


def image_bytes(rng: random.Random, size: int = 32) -> bytes:
    """A small PNG: a coloured disc on a coloured ground (the minis' pictures)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    x, y = rng.randrange(size // 2), rng.randrange(size // 2)
    ImageDraw.Draw(im).ellipse([x, y, x + size // 2, y + size // 2], fill=tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def read_parquet_split(root: Path, split: str, benchmark: str, splits: Sequence[str],
                       check: Callable[[dict, str, str], None], label: Callable[[int, dict], str]) -> list[dict]:
    """Every row of `root/split/*.parquet` in file order, each checked by check(row, split, where);
    `label(i, row)` names row i in errors."""
    import pyarrow.parquet as pq

    root = Path(root)
    if split not in splits:
        raise DataError(f"{root}: unknown {benchmark} split '{split}'; its splits: {', '.join(splits)}")
    files = sorted((root / split).glob("*.parquet"))
    if not files:
        raise DataError(f"{root / split}: no parquet file (the released layout: {split}/train-*.parquet)")
    records = []
    for path in files:
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow's errors for a file that is not parquet
            raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
        for i, row in enumerate(rows):
            check(row, split, f"{path}: {label(i, row)}")
        records += rows
    return records


def write_parquet_split(out: Path, split: str, rows: list[dict], columns: Sequence[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (Path(out) / split).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{c: r[c] for c in columns} for r in rows]),
                   Path(out) / split / "train-00000-of-00001.parquet")


def image_file(data: bytes, cache: Path) -> Path:
    """The image bytes as a file the prompt encoder opens: `cache/<sha1 of the bytes>.png`, written once
    (atomically) and shared by every record that shows the same image."""
    path = Path(cache) / f"{hashlib.sha1(data).hexdigest()}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return path


def blank_image(cache: Path) -> Path:
    """The grey picture a text-only question is shown with: every family's prompt here holds an image, and
    this one shows nothing of the person the text names."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(buf, format="PNG")
    return image_file(buf.getvalue(), cache)


def image_cache(root: Path) -> Path:
    """Where a parquet benchmark's images are written as files: beside its folder when that can be written,
    else in the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    import os
    import tempfile

    root = Path(root)
    cache = root / ".safeeraser-images"
    try:
        cache.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".probe-"):  # an existing folder may be read-only
            pass
        return cache
    except OSError:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "safeeraser" / "images" / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]


def same_length(answers, references) -> None:
    if not answers or len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers for {len(references)} references")


def pair_rouge(answers: list[str], references: list[str], keys: tuple[str, ...], measure: str) -> list[dict]:
    """Each pair's ROUGE variants in `keys` (rouge-score, Porter stemming, reference first), as `measure`
    (fmeasure, recall or precision): how the benchmarks' own code scores generations."""
    from rouge_score import rouge_scorer

    same_length(answers, references)
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=True)
    scores = (scorer.score(g, a) for a, g in zip(answers, references))
    return [{k: getattr(s[k], measure) for k in keys} for s in scores]


def mean_rouge(answers: list[str], references: list[str], keys: tuple[str, ...], measure: str) -> dict[str, float]:
    """The mean over the pairs of each of `pair_rouge`'s variants."""
    scores = pair_rouge(answers, references, keys, measure)
    return {k: sum(s[k] for s in scores) / len(scores) for k in keys}
