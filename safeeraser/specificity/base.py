"""What every benchmark shares: the request sent to the model, the question a benchmark loads, the
benchmark interface, and the file look-ups that explain what is missing and where it was expected."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safeeraser.io import DataError, read_json_records

SHORT_ANSWER = "Answer the question using a single word or phrase."
OPTION_LETTER = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Request:
    """One generation request. `prompt` is the user turn's text without chat template or image
    token: the engine applies the model's chat template and places the image."""

    question_id: str
    image: Path | None
    prompt: str
    max_new_tokens: int


# predict_fn(requests) returns one answer string per request, in the same order; greedy decoding.
PredictFn = Callable[[list[Request]], list[str]]


@dataclass(frozen=True)
class Question:
    """A question as loaded from a benchmark's files. `reference` holds what the scorer needs (gold
    answers, options, split...); it is saved beside the model's answer in predictions.jsonl.
    `group` ties questions that must be sampled together (MMBench's rotations of one question)."""

    question_id: str
    image: Path | None
    prompt: str
    reference: dict
    group: str | None = None

    @property
    def sample_group(self) -> str:
        return self.group if self.group is not None else self.question_id


class Benchmark(ABC):
    """A benchmark: how to read its files into questions and how to score answers to them."""

    name: str
    title: str
    folder_names: tuple[str, ...]  # folder under --data_root, first one preferred
    max_new_tokens: int = 128
    metric: str  # what the headline score is, for the table
    reference_fields: tuple[str, ...]  # the keys of Question.reference that score() reads

    def __init__(self, grader=None):
        self.grader = grader  # only benchmarks graded by a judge (MM-Vet) use it

    def load(self, folder: Path, workdir: Path | None = None, check_images: bool = True) -> list[Question]:
        """Questions from the benchmark's folder, their images checked unless `check_images` is off
        (scoring needs only the references). `workdir` is where images stored inside the data files
        are unpacked (MMBench); None when only the references are needed."""
        questions = self.read_questions(folder, workdir, image_dir_required=check_images)
        if check_images:
            check_images_exist(questions, self.name)
        return questions

    @abstractmethod
    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        """The questions of the benchmark's folder, in file order."""

    @abstractmethod
    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        """question id -> reference, from the official annotation file(s) alone."""

    @abstractmethod
    def score(self, rows: list[dict]) -> dict:
        """Scores for rows holding `answer` and the reference fields. The result has `score` (the
        headline, in percent, or None when it cannot be computed, with `unavailable` saying why)."""

    def prediction_keys(self, row: dict) -> list[str]:
        """The ids under which a prediction from elsewhere may be found in the references."""
        return [str(row["question_id"])]

    def find_folder(self, data_root: Path) -> Path:
        for name in self.folder_names:
            if (data_root / name).is_dir():
                return data_root / name
        tried = ", ".join(str(data_root / n) for n in self.folder_names)
        raise DataError(f"{self.name}: no {self.title} folder under {data_root} (looked for {tried})")


def find_file(folder: Path, candidates: tuple[str, ...], what: str, benchmark: str) -> Path:
    """The first candidate path that exists under `folder`, or a DataError naming all of them."""
    found = optional_file(folder, candidates)
    if found is None:
        tried = ", ".join(str(folder / c) for c in candidates)
        raise DataError(f"{benchmark}: {what} not found; expected at {tried}")
    return found


def optional_file(folder: Path, candidates: tuple[str, ...]) -> Path | None:
    for c in candidates:
        if (folder / c).is_file():
            return folder / c
    return None


def image_folder(folder: Path, candidates: tuple[str, ...], benchmark: str, required: bool) -> Path:
    """The image folder; when images are not needed (scoring only) its absence is no error."""
    for c in candidates:
        if (folder / c).is_dir():
            return folder / c
    if not required:
        return folder / candidates[0]
    tried = ", ".join(str(folder / c) for c in candidates)
    raise DataError(f"{benchmark}: image folder not found; expected at {tried}")


def read_json_file(path: Path, benchmark: str):
    """A whole JSON document (the official annotation files are objects, not record lists)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{benchmark}: {path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{benchmark}: {path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None


def read_keyed_json(path: Path, benchmark: str, fields: tuple[str, ...]) -> dict[str, dict]:
    """An official file that maps ids to entries (GQA, MM-Vet), each entry checked for `fields`."""
    data = expect_type(read_json_file(path, benchmark), dict, f"{benchmark}: {path}")
    for key, entry in data.items():
        where = f"{benchmark}: {path}: {key}"
        expect_type(entry, dict, where)
        for field in fields:
            require(entry, field, where)
    return data


def expect_type(value, kind: type, what: str):
    if not isinstance(value, kind):
        raise DataError(f"{what}: expected a JSON {'object' if kind is dict else 'list'}, got {type(value).__name__}")
    return value


def one_path(paths: list[Path], benchmark: str, what: str) -> Path:
    if len(paths) != 1:
        raise DataError(f"{benchmark}: scoring needs one annotation file, {what}; got {len(paths)}")
    return paths[0]


def require(record: dict, field: str, where: str):
    """record[field], or a DataError naming the field and the record."""
    if field not in record or record[field] is None:
        raise DataError(f"{where}: missing field '{field}'")
    return record[field]


def read_llava_questions(path: Path, benchmark: str) -> list[dict]:
    """LLaVA-1.5's question JSONL (question_id, image, text per line), checked field by field."""
    rows = read_json_records(path)
    for i, row in enumerate(rows):
        for field in ("question_id", "image", "text"):
            require(row, field, f"{benchmark}: {path}: line {i + 1}")
    return rows


def questions_from_llava_file(path: Path, benchmark: str, image_dir: Path, instruction: str | None,
                              reference_for: Callable[[dict], dict]) -> list[Question]:
    """Questions in the order, ids, images and wording of a LLaVA question file; `reference_for`
    finds each row's gold data in the official annotations (raising DataError when it is absent)."""
    return [
        Question(
            question_id=str(row["question_id"]),
            image=image_dir / row["image"],
            prompt=with_instruction(row["text"], instruction) if instruction else row["text"].strip(),
            reference=reference_for(row),
        )
        for row in read_llava_questions(path, benchmark)
    ]


def with_instruction(text: str, instruction: str) -> str:
    """Append the answer-format instruction on its own line unless the text already ends with it
    (LLaVA's question files for GQA, VQAv2, VizWiz and POPE carry it already)."""
    text = text.strip()
    if text.endswith(instruction):
        return text
    return f"{text}\n{instruction}"


def check_images_exist(questions: list[Question], benchmark: str) -> None:
    missing = [q for q in questions if q.image is not None and not q.image.is_file()]
    if missing:
        first = missing[0]
        raise DataError(
            f"{benchmark}: {len(missing)} of {len(questions)} images not found, e.g. {first.image} "
            f"(question {first.question_id})"
        )
