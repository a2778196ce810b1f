"""MMBench dev (English): option accuracy with circular evaluation. Each question is asked once per
option, the options rotated one place each time; it counts as right only when every rotation is
answered right. Free-form answers go through the option extraction of options.py.

Folder `mmbench/`: one TSV, the official dev file (e.g. mmbench_dev_20230712.tsv) with columns
index, question, hint, A, B, C, D (E...), answer, category, image (base64). A TSV that already holds
the rotations (VLMEvalKit's circular files: index + k * 1,000,000) is used as it is.

Question ids are index + round * 1,000,000, so round 0 keeps the TSV's index; a prediction from
LLaVA's model_vqa_mmbench (question_id = index, round_id) is found under the same id.
"""
from __future__ import annotations

import base64
import binascii
import csv
import sys
from collections import Counter
from pathlib import Path

from safeeraser.io import DataError
from safeeraser.specificity.base import OPTION_LETTER, Benchmark, Question, one_path
from safeeraser.specificity.options import LETTERS, extract_option, format_options

ROUND_STRIDE = 1_000_000
REQUIRED_COLUMNS = ("index", "question", "answer", "image", "A", "B")


def _cell(row: dict, column: str) -> str | None:
    """A cell's text; empty cells and pandas' 'nan' mean no value."""
    value = (row.get(column) or "").strip()
    return None if value == "" or value.lower() == "nan" else value


def read_tsv(path: Path, benchmark: str) -> list[dict]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # base64 images are far above csv's default limit
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{benchmark}: {path}: missing column(s) {', '.join(missing)} (the dev TSV has "
                            "them; the test TSV has no answers)")
        rows = list(reader)
    if not rows:
        raise DataError(f"{benchmark}: {path}: no questions")
    return rows


def _image_suffix(data: bytes) -> str:
    return ".png" if data.startswith(b"\x89PNG") else ".jpg"


class MMBench(Benchmark):
    name = "mmbench"
    title = "MMBench"
    folder_names = ("mmbench",)
    metric = "circular accuracy (%)"
    reference_fields = ("choices", "gold", "group", "rounds")

    def _tsv(self, folder: Path) -> Path:
        found = sorted(folder.glob("*.tsv"))
        if len(found) != 1:
            what = "none" if not found else ", ".join(p.name for p in found)
            raise DataError(f"{self.name}: expected one MMBench dev TSV in {folder}, found {what}")
        return found[0]

    def _read_rows(self, path: Path) -> list[dict]:
        """The TSV's rows, each with its integer index, its options and the position of its answer."""
        rows = read_tsv(path, self.name)
        for i, row in enumerate(rows):
            where = f"{self.name}: {path}: row {i + 1}"
            try:
                row["index"] = int(row["index"])
            except ValueError:
                raise DataError(f"{where}: index {row['index']!r} is not an integer") from None
            row["choices"] = [c for c in (_cell(row, letter) for letter in LETTERS) if c is not None]
            gold = _cell(row, "answer")
            if gold not in LETTERS[: len(row["choices"])]:
                raise DataError(f"{where}: answer {gold!r} is not one of its options "
                                f"{LETTERS[: len(row['choices'])]}")
            row["gold_position"] = LETTERS.index(gold)
        return rows

    def _items(self, path: Path) -> list[dict]:
        """One item per question to ask: the TSV row, its id, its options in this round's order, the
        gold letter in that order, its group (the TSV index) and the group's number of rounds."""
        rows = self._read_rows(path)
        already_circular = any(row["index"] >= ROUND_STRIDE for row in rows)
        items = []
        for row in rows:
            n = len(row["choices"])
            for k in range(1) if already_circular else range(n):
                choices = row["choices"][k:] + row["choices"][:k]  # round k starts at option k
                items.append({"row": row, "index": row["index"] + k * ROUND_STRIDE, "choices": choices,
                              "gold": LETTERS[(row["gold_position"] - k) % n], "group": row["index"] % ROUND_STRIDE})
        rounds = Counter(item["group"] for item in items)
        for item in items:
            item["rounds"] = rounds[item["group"]]
        return items

    def read_questions(self, folder: Path, workdir: Path | None, image_dir_required: bool) -> list[Question]:
        path = self._tsv(folder)
        items = self._items(path)
        images = self._unpack_images(path, [item["row"] for item in items], workdir) if workdir else {}
        return [
            Question(str(item["index"]), images.get(item["row"]["index"]), build_prompt(item["row"], item["choices"]),
                     _reference(item), group=str(item["group"]))
            for item in items
        ]

    def _unpack_images(self, path: Path, rows: list[dict], workdir: Path) -> dict[int, Path]:
        """index -> image file, decoded from the TSV once. A cell holding only another row's index
        refers to that row's image (VLMEvalKit's files do this to save space)."""
        by_index = {row["index"]: row for row in rows}
        out_dir = workdir / "images"
        out_dir.mkdir(parents=True, exist_ok=True)
        images = {}
        for index, row in by_index.items():
            cell = row["image"].strip()
            if cell.isdigit() and int(cell) in by_index:
                cell = by_index[int(cell)]["image"].strip()
            try:
                data = base64.b64decode(cell, validate=True)
            except (binascii.Error, ValueError):
                raise DataError(f"{self.name}: {path}: question {index}: the image cell is not base64") from None
            target = out_dir / f"{index}{_image_suffix(data)}"
            if not target.is_file() or target.stat().st_size != len(data):
                target.write_bytes(data)
            images[index] = target
        return images

    def read_annotations(self, paths: list[Path]) -> dict[str, dict]:
        path = one_path(paths, self.name, "the MMBench dev TSV")
        return {str(item["index"]): _reference(item) for item in self._items(path)}

    def prediction_keys(self, row: dict) -> list[str]:
        if "round_id" in row:  # LLaVA's --all-rounds output: the TSV index plus the round
            return [str(int(row["question_id"]) + int(row["round_id"]) * ROUND_STRIDE)]
        return [str(row["question_id"])]

    def score(self, rows: list[dict]) -> dict:
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(str(row["group"]), []).append(row)
        incomplete = [g for g, members in groups.items() if len(members) != members[0]["rounds"]]
        if incomplete:
            g = incomplete[0]
            raise DataError(f"{self.name}: circular evaluation needs every rotation of a question; question {g} "
                            f"has {len(groups[g])} of {groups[g][0]['rounds']} (and {len(incomplete) - 1} more "
                            "questions are incomplete)")
        right = {g: all(extract_option(r["answer"], r["choices"]) == r["gold"] for r in members)
                 for g, members in groups.items()}
        first_rounds = [r for r in rows if int(r["question_id"]) < ROUND_STRIDE]
        first_right = sum(extract_option(r["answer"], r["choices"]) == r["gold"] for r in first_rounds)
        per_category: dict[str, list[bool]] = {}
        for g, members in groups.items():
            per_category.setdefault(members[0].get("category") or "unknown", []).append(right[g])
        return {
            "score": 100 * sum(right.values()) / len(groups),
            "n": len(groups),
            "n_answers": len(rows),
            "single_round_accuracy": 100 * first_right / len(first_rounds) if first_rounds else None,
            "per_category": {c: 100 * sum(v) / len(v) for c, v in sorted(per_category.items())},
        }


def build_prompt(row: dict, choices: list[str]) -> str:
    """LLaVA-1.5's MMBench layout: hint line when there is one, question, lettered options, instruction."""
    hint = _cell(row, "hint")
    question = f"{hint}\n{row['question']}" if hint else row["question"]
    return f"{question}\n{format_options(choices)}\n{OPTION_LETTER}"


def _reference(item: dict) -> dict:
    return {"choices": item["choices"], "gold": item["gold"], "group": str(item["group"]),
            "rounds": item["rounds"], "category": _cell(item["row"], "category")}
