"""ScienceQA-IMG: option accuracy on the test problems that have an image.

Folder `sqa/` (or `scienceqa/`):
- problems.json: the official problems, {pid: {question, choices, answer (index), hint, image,
  split, ...}}; required.
- pid_splits.json: the official splits, {"test": [pid, ...], ...}; without it a problem's own
  `split` field decides.
- llava_test_CQM-A.json: LLaVA-1.5's question file (a JSON list of {id, image, conversations}); when
  present it sets the prompts.
- images/test/<pid>/image.png.
"""
from __future__ import annotations

from pathlib import Path

from safeeraser.io import DataError, read_json_records
from safeeraser.specificity.base import (OPTION_LETTER, Benchmark, Question, expect_type, find_file, image_folder,
                                         optional_file, read_json_file, require, with_instruction)
from safeeraser.specificity.options import LETTERS, extract_option, format_options

PROBLEM_FILES = ("problems.json", "data/scienceqa/problems.json")
SPLIT_FILES = ("pid_splits.json", "data/scienceqa/pid_splits.json")
LLAVA_FILES = ("llava_test_CQM-A.json",)
IMAGE_DIRS = ("images/test", "test")
SPLIT = "test"


class ScienceQA(Benchmark):
    name = "sqa"
    title = "ScienceQA-IMG"
    folder_names = ("sqa", "scienceqa")
    metric = "accuracy (%)"
    reference_fields = ("choices", "gold")

    def _image_problems(self, problems_path: Path, splits_path: Path | None) -> dict[str, dict]:
        """pid -> problem, for the test problems with an image (the IMG subset)."""
        problems = expect_type(read_json_file(problems_path, self.name), dict, f"{self.name}: {problems_path}")
        if splits_path is not None:
            splits = expect_type(read_json_file(splits_path, self.name), dict, f"{self.name}: {splits_path}")
            test_ids = [str(pid) for pid in require(splits, SPLIT, f"{self.name}: {splits_path}")]
        else:
            test_ids = [pid for pid, p in problems.items()
                        if require(p, "split", f"{self.name}: {problems_path}: problem {pid} (no pid_splits.json)")
                        == SPLIT]
        selected = {}
        for pid in test_ids:
            where = f"{self.name}: {problems_path}: problem {pid}"
            problem = problems.get(pid)
            if problem is None:
                raise DataError(f"{self.name}: problem {pid} of the {SPLIT} split is not in {problems_path}")
            for field in ("question", "choices", "answer"):
                require(problem, field, where)
            if not isinstance(problem["answer"], int) or not 0 <= problem["answer"] < len(problem["choices"]):
                raise DataError(f"{where}: answer index {problem['answer']} is outside its "
                                f"{len(problem['choices'])} choices")
            if problem.get("image"):
                selected[pid] = problem
        return selected

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        problems_path = find_file(folder, PROBLEM_FILES, "the ScienceQA problems.json", self.name)
        problems = self._image_problems(problems_path, optional_file(folder, SPLIT_FILES))
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is None:
            questions = [Question(pid, image_dir / pid / p["image"], build_prompt(p), _reference(p))
                         for pid, p in problems.items()]
        else:
            questions = self._llava_questions(llava_path, problems, image_dir)
        return questions

    def _llava_questions(self, path: Path, problems: dict[str, dict], image_dir: Path) -> list[Question]:
        questions = []
        for i, row in enumerate(read_json_records(path)):
            where = f"{self.name}: {path}: entry {i}"
            pid = str(require(row, "id", where))
            if "image" not in row or pid not in problems:
                continue  # a text-only or non-test question: outside ScienceQA-IMG
            turns = expect_type(require(row, "conversations", where), list, f"{where}: conversations")
            if not turns or "value" not in turns[0]:
                raise DataError(f"{where}: conversations[0] has no 'value' (the question)")
            text = turns[0]["value"].replace("<image>", "").strip()
            questions.append(Question(pid, image_dir / row["image"], with_instruction(text, OPTION_LETTER),
                                      _reference(problems[pid])))
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        splits = [p for p in paths if p.name == "pid_splits.json"]
        problems = [p for p in paths if p.name != "pid_splits.json"]
        if len(problems) != 1 or len(splits) > 1:
            raise DataError(f"{self.name}: scoring needs problems.json and optionally pid_splits.json; got "
                            f"{', '.join(str(p) for p in paths)}")
        image_problems = self._image_problems(problems[0], splits[0] if splits else None)
        return {pid: _reference(p) for pid, p in image_problems.items()}

    def score(self, rows: list[dict]) -> dict:
        correct = sum(extract_option(r["answer"], r["choices"]) == r["gold"] for r in rows)
        return {"score": 100 * correct / len(rows), "n": len(rows), "correct": correct}


def build_prompt(problem: dict) -> str:
    """LLaVA-1.5's ScienceQA layout: optional context line, question, lettered options, instruction."""
    context = f"Context: {problem['hint']}\n" if problem.get("hint") else ""
    return f"{context}{problem['question']}\n{format_options(problem['choices'])}\n{OPTION_LETTER}"


def _reference(problem: dict) -> dict:
    return {"choices": problem["choices"], "gold": LETTERS[problem["answer"]]}
