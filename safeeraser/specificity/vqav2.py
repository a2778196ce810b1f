"""VQAv2 val: VQA accuracy against the ten human answers.

Folder `vqav2/`:
- v2_mscoco_val2014_annotations.json: the official annotations, {"annotations": [{question_id,
  answers: [{answer, ...} x10], answer_type, ...}]}; required.
- v2_OpenEnded_mscoco_val2014_questions.json: the official questions, {"questions": [{question_id,
  image_id, question}]}; required unless the LLaVA question file is there.
- llava_vqav2_mscoco_val2014.jsonl: a LLaVA-1.5 question file; when present it sets the questions.
- val2014/: COCO_val2014_<image_id, 12 digits>.jpg.
"""
from __future__ import annotations

from pathlib import Path

from safeeraser.io import DataError
from safeeraser.specificity.base import (SHORT_ANSWER, Benchmark, Question, expect_type, find_file, image_folder,
                                         one_path, optional_file, questions_from_llava_file, read_json_file,
                                         require, with_instruction)
from safeeraser.specificity.vqa_accuracy import score_vqa_rows

ANNOTATION_FILES = ("v2_mscoco_val2014_annotations.json",)
QUESTION_FILES = ("v2_OpenEnded_mscoco_val2014_questions.json",)
LLAVA_FILES = ("llava_vqav2_mscoco_val2014.jsonl",)
IMAGE_DIRS = ("val2014",)


def human_answers(answers: list, where: str) -> list[str]:
    expect_type(answers, list, where)
    if not answers:
        raise DataError(f"{where}: no human answers")
    return [require(expect_type(a, dict, where), "answer", where) for a in answers]


class VQAv2(Benchmark):
    name = "vqav2"
    title = "VQAv2"
    folder_names = ("vqav2",)
    metric = "VQA accuracy (%)"
    reference_fields = ("human_answers", "answer_type")

    def _read_annotations(self, path: Path) -> dict[str, dict]:
        data = expect_type(read_json_file(path, self.name), dict, f"{self.name}: {path}")
        annotations = expect_type(require(data, "annotations", f"{self.name}: {path}"), list,
                                  f"{self.name}: {path}: annotations")
        references = {}
        for i, ann in enumerate(annotations):
            where = f"{self.name}: {path}: annotation {i}"
            qid = str(require(ann, "question_id", where))
            references[qid] = {"human_answers": human_answers(require(ann, "answers", where), where),
                               "answer_type": ann.get("answer_type")}
        return references

    def _reference(self, references: dict[str, dict], qid, source: Path, annotations_path: Path) -> dict:
        if str(qid) not in references:
            raise DataError(f"{self.name}: question {qid} of {source} has no annotation in {annotations_path}")
        return references[str(qid)]

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        annotations_path = find_file(folder, ANNOTATION_FILES, "the VQAv2 val annotations", self.name)
        references = self._read_annotations(annotations_path)
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is not None:
            questions = questions_from_llava_file(
                llava_path, self.name, image_dir, SHORT_ANSWER,
                lambda row: self._reference(references, row["question_id"], llava_path, annotations_path))
        else:
            questions_path = find_file(folder, QUESTION_FILES, "the VQAv2 val questions", self.name)
            data = expect_type(read_json_file(questions_path, self.name), dict, f"{self.name}: {questions_path}")
            entries = expect_type(require(data, "questions", f"{self.name}: {questions_path}"), list,
                                  f"{self.name}: {questions_path}: questions")
            questions = []
            for i, entry in enumerate(entries):
                where = f"{self.name}: {questions_path}: question {i}"
                qid = require(entry, "question_id", where)
                image_id = int(require(entry, "image_id", where))
                questions.append(Question(
                    str(qid), image_dir / f"COCO_val2014_{image_id:012d}.jpg",
                    with_instruction(require(entry, "question", where), SHORT_ANSWER),
                    self._reference(references, qid, questions_path, annotations_path)))
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        return self._read_annotations(one_path(paths, self.name, "v2_mscoco_val2014_annotations.json"))

    def score(self, rows: list[dict]) -> dict:
        return score_vqa_rows(rows)
