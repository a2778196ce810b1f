"""MM-Vet: open-ended answers graded 0-1 by a judge (see grader.py); the score is the mean grade, in
percent, overall and per capability. Without a judge that can grade, MM-Vet has no score.

Folder `mmvet/` (or `mm-vet/`):
- mm-vet.json: the official file, {"v1_0": {imagename, capability, question, answer}, ...}; required.
- llava-mm-vet.jsonl: LLaVA-1.5's question file (question_id = the number in "v1_<n>"); when present
  it sets the questions.
- images/: the images.
LLaVA-1.5 asks MM-Vet questions as they are, without an answer-format instruction.
"""
from __future__ import annotations

from pathlib import Path

from safeeraser.io import DataError
from safeeraser.specificity.base import (Benchmark, Question, find_file, image_folder, one_path, optional_file,
                                         questions_from_llava_file, read_keyed_json)
from safeeraser.specificity.grader import OfflineGrader

OFFICIAL_FILES = ("mm-vet.json",)
LLAVA_FILES = ("llava-mm-vet.jsonl",)
IMAGE_DIRS = ("images",)


def official_key(question_id) -> str:
    """LLaVA numbers MM-Vet questions 0, 1, ...; the official file keys them v1_0, v1_1, ..."""
    text = str(question_id)
    return f"v1_{text}" if text.isdigit() else text


class MMVet(Benchmark):
    name = "mmvet"
    title = "MM-Vet"
    folder_names = ("mmvet", "mm-vet")
    max_new_tokens = 1024
    metric = "GPT-graded score (%)"
    reference_fields = ("question", "ground_truth", "capability")

    def __init__(self, grader=None):
        super().__init__(grader if grader is not None else OfflineGrader())

    def _read_official(self, path: Path) -> dict[str, dict]:
        return read_keyed_json(path, self.name, ("imagename", "question", "answer"))

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        official_path = find_file(folder, OFFICIAL_FILES, "the MM-Vet mm-vet.json", self.name)
        official = self._read_official(official_path)
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is None:
            questions = [Question(key, image_dir / e["imagename"], e["question"].strip(), _reference(e))
                         for key, e in official.items()]
        else:
            def reference_for(row: dict) -> dict:
                key = official_key(row["question_id"])
                if key not in official:
                    raise DataError(f"{self.name}: question {row['question_id']} of {llava_path} has no entry "
                                    f"{key} in {official_path}")
                return _reference(official[key])

            questions = questions_from_llava_file(llava_path, self.name, image_dir, None, reference_for)
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        path = one_path(paths, self.name, "mm-vet.json")
        return {key: _reference(e) for key, e in self._read_official(path).items()}

    def prediction_keys(self, row: dict) -> list[str]:
        return [str(row["question_id"]), official_key(row["question_id"])]

    def score(self, rows: list[dict]) -> dict:
        items = [{"question_id": r["question_id"], "question": r["question"], "ground_truth": r["ground_truth"],
                  "prediction": r["answer"], "capability": r["capability"]} for r in rows]
        grades = self.grader.grade(items)
        if len(grades) != len(items):
            raise ValueError(f"{type(self.grader).__name__} returned {len(grades)} grades for {len(items)} answers")
        if any(g is not None and not 0.0 <= g <= 1.0 for g in grades):
            raise ValueError(f"{type(self.grader).__name__} returned a grade outside [0, 1]")
        ungraded = sum(g is None for g in grades)
        if ungraded:
            return {"score": None, "n": len(rows),
                    "unavailable": f"{type(self.grader).__name__} could not grade {ungraded} of {len(rows)} "
                                   "answers (MM-Vet needs a language-model judge)"}
        per_capability: dict[str, list[float]] = {}
        for row, grade in zip(rows, grades):
            for capability in row["capability"]:
                per_capability.setdefault(capability, []).append(grade)
        return {
            "score": 100 * sum(grades) / len(grades),
            "n": len(rows),
            "per_capability": {c: 100 * sum(v) / len(v) for c, v in sorted(per_capability.items())},
            "grades": {str(r["question_id"]): g for r, g in zip(rows, grades)},
        }


def _reference(entry: dict) -> dict:
    capability = entry.get("capability") or []
    return {"question": entry["question"], "ground_truth": entry["answer"],
            "capability": capability if isinstance(capability, list) else [capability]}
