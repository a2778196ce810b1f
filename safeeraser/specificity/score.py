"""Scoring predictions: the runner's own, or answers produced elsewhere (LLaVA's answer files, whose
answer is in `text`) scored by the same rules."""
from __future__ import annotations

import os
from pathlib import Path

from safeeraser.io import DataError, read_json_records
from safeeraser.specificity.base import Benchmark
from safeeraser.specificity.registry import get_benchmark


def score_rows(benchmark: Benchmark, rows: list[dict]) -> dict:
    """The benchmark's scores for rows holding `answer` and its reference fields, with its name and
    headline metric."""
    if not rows:
        raise DataError(f"{benchmark.name}: no predictions to score")
    return {"benchmark": benchmark.name, "metric": benchmark.metric, **benchmark.score(rows)}


def _answer(row: dict, where: str) -> str:
    for field in ("answer", "text"):  # ours, then LLaVA's answer files
        if isinstance(row.get(field), str):
            return row[field]
    raise DataError(f"{where}: no answer (expected a string field 'answer' or 'text')")


def read_references(benchmark: Benchmark, annotations: list[Path]) -> dict[str, dict]:
    """question id -> reference, from a benchmark folder (any file layout the runner reads, LLaVA
    question files included) or from the official annotation file(s)."""
    if len(annotations) == 1 and annotations[0].is_dir():
        questions = benchmark.load(annotations[0], workdir=None, check_images=False)
        return {q.question_id: q.reference for q in questions}
    for path in annotations:
        if not path.is_file():
            raise DataError(f"{benchmark.name}: annotation file {path} not found")
    return benchmark.read_annotations(annotations)


def _rows_carrying_references(bench: Benchmark, predictions: list[dict], source: Path) -> list[dict]:
    rows = {}  # by question id: a question answered twice counts once, with its last answer
    for i, row in enumerate(predictions):
        where = f"{source}: record {i}"
        missing = [f for f in ("question_id", *bench.reference_fields) if f not in row]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}; give --annotations to score "
                            f"{bench.name} predictions that do not carry their references")
        rows[str(row["question_id"])] = {**row, "answer": _answer(row, where)}
    return list(rows.values())


def _rows_joined(bench: Benchmark, predictions: list[dict], source: Path,
                 references: dict[str, dict]) -> tuple[list[dict], list[str]]:
    """(rows for the predictions that have a reference, ids of those that have none)."""
    rows, unmatched = {}, []
    for i, row in enumerate(predictions):
        where = f"{source}: record {i}"
        if "question_id" not in row:
            raise DataError(f"{where}: missing field 'question_id'")
        key = next((k for k in bench.prediction_keys(row) if k in references), None)
        if key is None:
            unmatched.append(str(row["question_id"]))
        else:
            rows[key] = {**references[key], "question_id": key, "answer": _answer(row, where)}
    return list(rows.values()), unmatched


def score_predictions(benchmark: str | Benchmark, predictions_path: str | os.PathLike,
                      annotations_paths: list[str | os.PathLike] | str | os.PathLike | None = None,
                      grader=None) -> dict:
    """Score a predictions file (JSON lines or a JSON list of {question_id, answer or text, ...}).

    With annotations (a benchmark folder, or its official annotation file(s)) the references come
    from them, matched by question id; predictions without a reference there are left out and
    counted. Without, each prediction must carry the reference fields, as the runner's
    predictions.jsonl does."""
    bench = get_benchmark(benchmark, grader) if isinstance(benchmark, str) else benchmark
    predictions_path = Path(predictions_path)
    predictions = read_json_records(predictions_path)
    if not annotations_paths:
        rows = _rows_carrying_references(bench, predictions, predictions_path)
        return {**score_rows(bench, rows), "unmatched_predictions": 0}
    if isinstance(annotations_paths, (str, os.PathLike)):
        annotations_paths = [annotations_paths]
    annotations = [Path(p) for p in annotations_paths]
    rows, unmatched = _rows_joined(bench, predictions, predictions_path, read_references(bench, annotations))
    if not rows:
        raise DataError(f"{bench.name}: none of the {len(predictions)} predictions in {predictions_path} has a "
                        f"reference in {', '.join(map(str, annotations))} (first id: {unmatched[0]})")
    return {**score_rows(bench, rows), "unmatched_predictions": len(unmatched)}
