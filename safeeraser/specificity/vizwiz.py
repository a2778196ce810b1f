"""VizWiz-VQA val: VQA accuracy against the ten human answers; `unanswerable` is an answer like any
other, and the prompt asks for it when the image does not tell.

Folder `vizwiz/`:
- val.json (or Annotations/val.json): the official val annotations, a list of {image, question,
  answers: [{answer, answer_confidence} x10], answer_type, answerable}; required. A question's id
  is its image's file name (one question per image).
- llava_val.jsonl: a LLaVA-1.5 question file (question_id, image, text); when present it sets the
  questions, matched to the annotations by image.
- val/: the images.
"""
from __future__ import annotations

from pathlib import Path

from safeeraser.io import DataError, read_json_records
from safeeraser.specificity.base import (SHORT_ANSWER, Benchmark, Question, find_file, image_folder, one_path,
                                         optional_file, questions_from_llava_file, require, with_instruction)
from safeeraser.specificity.vqa_accuracy import score_vqa_rows
from safeeraser.specificity.vqav2 import human_answers

ANNOTATION_FILES = ("val.json", "Annotations/val.json")
LLAVA_FILES = ("llava_val.jsonl",)
IMAGE_DIRS = ("val",)
INSTRUCTION = f"When the provided information is insufficient, respond with 'Unanswerable'.\n{SHORT_ANSWER}"


class VizWiz(Benchmark):
    name = "vizwiz"
    title = "VizWiz"
    folder_names = ("vizwiz",)
    metric = "VQA accuracy (%)"
    reference_fields = ("human_answers", "answer_type")

    def _read_annotations(self, path: Path) -> dict[str, dict]:
        """image name -> {question, human_answers, answer_type}."""
        entries = {}
        for i, entry in enumerate(read_json_records(path)):
            where = f"{self.name}: {path}: entry {i}"
            entries[require(entry, "image", where)] = {
                "question": require(entry, "question", where),
                "human_answers": human_answers(require(entry, "answers", where), where),
                "answer_type": entry.get("answer_type"),
            }
        return entries

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        annotations_path = find_file(folder, ANNOTATION_FILES, "the VizWiz val annotations", self.name)
        entries = self._read_annotations(annotations_path)
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is None:
            questions = [
                Question(image, image_dir / image, with_instruction(e["question"], INSTRUCTION), _reference(e))
                for image, e in entries.items()
            ]
        else:
            def reference_for(row: dict) -> dict:
                if row["image"] not in entries:
                    raise DataError(f"{self.name}: image {row['image']} of {llava_path} has no annotation in "
                                    f"{annotations_path}")
                return _reference(entries[row["image"]])

            questions = questions_from_llava_file(llava_path, self.name, image_dir, INSTRUCTION, reference_for)
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        path = one_path(paths, self.name, "val.json")
        return {image: _reference(e) for image, e in self._read_annotations(path).items()}

    def score(self, rows: list[dict]) -> dict:
        return score_vqa_rows(rows)


def _reference(entry: dict) -> dict:
    return {"human_answers": entry["human_answers"], "answer_type": entry["answer_type"]}
