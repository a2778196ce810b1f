"""GQA testdev-balanced: exact match after the VQA answer normalisation.

Folder `gqa/` (LLaVA's layout is accepted too):
- testdev_balanced_questions.json (or data/...): the official questions with answers, {id: {imageId,
  question, answer, ...}}; required.
- llava_gqa_testdev_balanced.jsonl: LLaVA-1.5's question file; when present it sets the questions,
  their ids and wording.
- images/ (or data/images/): <imageId>.jpg.
"""
from __future__ import annotations

from pathlib import Path

from safeeraser.io import DataError
from safeeraser.specificity.base import (SHORT_ANSWER, Benchmark, Question, find_file, image_folder, one_path,
                                         optional_file, questions_from_llava_file, read_keyed_json,
                                         with_instruction)
from safeeraser.specificity.normalize import normalize_answer

OFFICIAL_FILES = ("testdev_balanced_questions.json", "data/testdev_balanced_questions.json")
LLAVA_FILES = ("llava_gqa_testdev_balanced.jsonl",)
IMAGE_DIRS = ("images", "data/images")


class GQA(Benchmark):
    name = "gqa"
    title = "GQA"
    folder_names = ("gqa",)
    metric = "exact match (%)"
    reference_fields = ("gold",)

    def _read_official(self, path: Path) -> dict[str, dict]:
        return read_keyed_json(path, self.name, ("imageId", "question", "answer"))

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        official_path = find_file(folder, OFFICIAL_FILES, "the GQA testdev-balanced questions with answers",
                                  self.name)
        official = self._read_official(official_path)
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is None:
            questions = [
                Question(qid, image_dir / f"{e['imageId']}.jpg", with_instruction(e["question"], SHORT_ANSWER),
                         {"gold": e["answer"]})
                for qid, e in official.items()
            ]
        else:
            def reference_for(row: dict) -> dict:
                entry = official.get(str(row["question_id"]))
                if entry is None:
                    raise DataError(f"{self.name}: question {row['question_id']} of {llava_path} has no answer "
                                    f"in {official_path}")
                return {"gold": entry["answer"]}

            questions = questions_from_llava_file(llava_path, self.name, image_dir, SHORT_ANSWER, reference_for)
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        path = one_path(paths, self.name, "testdev_balanced_questions.json")
        return {qid: {"gold": e["answer"]} for qid, e in self._read_official(path).items()}

    def score(self, rows: list[dict]) -> dict:
        correct = sum(normalize_answer(r["answer"]) == normalize_answer(r["gold"]) for r in rows)
        return {"score": 100 * correct / len(rows), "n": len(rows), "correct": correct}
