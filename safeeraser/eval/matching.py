"""Load the model's answers (--input_file) and the dataset (--file_refer) and pair them by position."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from safeeraser.data.records import UNHARM_KEYS, load_benchmark
from safeeraser.io import DataError

MODEL_RESPONSES = ("model_response1", "model_response2", "model_response3")
SD_RESPONSE = "sd_response"


@dataclass(frozen=True)
class MatchedRecord:
    index: int
    answers: dict  # the input record: the model's answers
    dataset: dict  # the dataset record at the same position: the reference answers
    category: str | None  # None: not one of the benchmark's categories
    image: Path  # the harmful image, resolved against the dataset file (for judges that see it)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_matched(input_file: str | os.PathLike, refer_file: str | os.PathLike) -> list[MatchedRecord]:
    """Both files must hold the same records in the same order: same image_path, same questions.

    Raises DataError naming the file, the record and the field of the first problem.
    """
    input_file, refer_file = Path(input_file), Path(refer_file)
    inputs = load_benchmark(input_file, answers=MODEL_RESPONSES + (SD_RESPONSE,), check_images=False)
    dataset = load_benchmark(refer_file, answers=(), check_images=False)
    if len(inputs) != len(dataset):
        raise DataError(
            f"{input_file}: {len(inputs)} records, but {refer_file} has {len(dataset)}; "
            "the answers must come from inference on that same file"
        )
    matched = []
    for ours, theirs in zip(inputs, dataset, strict=True):
        checks = [("image_path", ours.raw["image_path"], theirs.raw["image_path"])]
        checks.append(("unsafe_pairs (count)", len(ours.unsafe_pairs), len(theirs.unsafe_pairs)))
        checks += [
            (f"unsafe_pairs[{j}].question", mine["question"], reference["question"])
            for j, (mine, reference) in enumerate(zip(ours.unsafe_pairs, theirs.unsafe_pairs))
        ]
        checks += [(f"{key}.Question", ours.raw[key]["Question"], theirs.raw[key]["Question"]) for key in UNHARM_KEYS]
        for field, mine, reference in checks:
            if mine != reference:
                raise DataError(
                    f"{input_file}: record {ours.index}: field '{field}': {_short(mine)} does not match "
                    f"{refer_file} record {theirs.index}: {_short(reference)}"
                )
        matched.append(MatchedRecord(ours.index, ours.raw, theirs.raw, ours.category, theirs.image))
    return matched
