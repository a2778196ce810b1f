"""POPE (COCO): yes/no object-hallucination questions in three splits; accuracy, precision, recall,
F1 and yes-ratio per split, "yes" being the positive class. Headline: F1 averaged over the splits
(as LLaVA-1.5 reports POPE).

Folder `pope/`:
- coco/coco_pope_{adversarial,popular,random}.json (or beside the folder's root): the official
  splits, JSON lines {question_id, image, text, label}; at least one. A question's id is
  "<split>-<question_id>" (ids repeat across splits).
- llava_pope_test.jsonl: LLaVA-1.5's question file (question_id, image, text, category = split);
  when present it sets the questions, matched to the splits by split, image and question.
- val2014/: the COCO images.
"""
from __future__ import annotations

import re
from pathlib import Path

from safeeraser.io import DataError, read_json_records
from safeeraser.specificity.base import (SHORT_ANSWER, Benchmark, Question, image_folder, optional_file,
                                         questions_from_llava_file, require, with_instruction)

SPLITS = ("adversarial", "popular", "random")
LLAVA_FILES = ("llava_pope_test.jsonl",)
IMAGE_DIRS = ("val2014",)
_SPLIT_FILE_NAME = re.compile(r"coco_pope_(\w+)\.json$")


def split_file_candidates(split: str) -> tuple[str, ...]:
    return (f"coco/coco_pope_{split}.json", f"coco_pope_{split}.json")


def yes_or_no(answer: str) -> str:
    """LLaVA's POPE reading of an answer, ignoring case: "no" when its first sentence has the word no
    or not, "yes" otherwise."""
    first_sentence = answer.split(".")[0] if "." in answer else answer
    words = first_sentence.replace(",", " ").lower().split()
    return "no" if "no" in words or "not" in words else "yes"


def split_metrics(labels: list[str], predictions: list[str]) -> dict:
    pairs = list(zip(labels, predictions))
    tp = sum(1 for gold, pred in pairs if gold == "yes" and pred == "yes")
    fp = sum(1 for gold, pred in pairs if gold == "no" and pred == "yes")
    tn = sum(1 for gold, pred in pairs if gold == "no" and pred == "no")
    fn = sum(1 for gold, pred in pairs if gold == "yes" and pred == "no")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"n": len(pairs), "accuracy": (tp + tn) / len(pairs), "precision": precision, "recall": recall,
            "f1": f1, "yes_ratio": (tp + fp) / len(pairs), "tp": tp, "fp": fp, "tn": tn, "fn": fn}


class POPE(Benchmark):
    name = "pope"
    title = "POPE"
    folder_names = ("pope",)
    metric = "F1 averaged over splits (%)"
    reference_fields = ("label", "split")

    def _read_split(self, path: Path, split: str) -> list[dict]:
        entries = read_json_records(path)
        for i, entry in enumerate(entries):
            where = f"{self.name}: {path}: line {i + 1}"
            for field in ("question_id", "image", "text", "label"):
                require(entry, field, where)
            if entry["label"] not in ("yes", "no"):
                raise DataError(f"{where}: label must be yes or no, got {entry['label']!r}")
            entry["split"] = split
        return entries

    def _read_splits(self, folder: Path) -> list[dict]:
        entries = []
        for split in SPLITS:
            path = optional_file(folder, split_file_candidates(split))
            if path is not None:
                entries.extend(self._read_split(path, split))
        if not entries:
            expected = ", ".join(str(folder / c) for s in SPLITS for c in split_file_candidates(s))
            raise DataError(f"{self.name}: no POPE split file found; expected at least one of {expected}")
        return entries

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        entries = self._read_splits(folder)
        image_dir = image_folder(folder, IMAGE_DIRS, self.name, required=image_dir_required)
        llava_path = optional_file(folder, LLAVA_FILES)
        if llava_path is None:
            questions = [
                Question(f"{e['split']}-{e['question_id']}", image_dir / e["image"],
                         with_instruction(e["text"], SHORT_ANSWER), _reference(e))
                for e in entries
            ]
        else:
            by_content = {(e["split"], e["image"], e["text"].strip()): e for e in entries}

            def reference_for(row: dict) -> dict:
                split = require(row, "category", f"{self.name}: {llava_path}: question {row['question_id']}")
                text = row["text"].replace(SHORT_ANSWER, "").strip()
                entry = by_content.get((split, row["image"], text))
                if entry is None:
                    raise DataError(f"{self.name}: question {row['question_id']} of {llava_path} ({split}, "
                                    f"{row['image']}) is in no POPE split file under {folder}")
                return _reference(entry)

            questions = questions_from_llava_file(llava_path, self.name, image_dir, SHORT_ANSWER, reference_for)
        return questions

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        references = {}
        for path in paths:
            match = _SPLIT_FILE_NAME.search(path.name)
            if match is None:
                raise DataError(f"{self.name}: cannot tell the split of {path}: POPE split files are named "
                                "coco_pope_<split>.json")
            for e in self._read_split(path, match.group(1)):
                references[f"{e['split']}-{e['question_id']}"] = _reference(e)
        return references

    def score(self, rows: list[dict]) -> dict:
        by_split: dict[str, list[dict]] = {}
        for row in rows:
            by_split.setdefault(row["split"], []).append(row)
        per_split = {
            split: split_metrics([r["label"] for r in split_rows], [yes_or_no(r["answer"]) for r in split_rows])
            for split, split_rows in sorted(by_split.items())
        }
        mean_f1 = sum(m["f1"] for m in per_split.values()) / len(per_split)
        return {"score": 100 * mean_f1, "n": len(rows), "per_split": per_split}


def _reference(entry: dict) -> dict:
    return {"label": entry["label"], "split": entry["split"]}
