"""Run a model on the benchmarks and score it: read and check every benchmark's files first, then
ask the questions not yet answered in predictions.jsonl, then score, then write the table.

Layout of output_dir:
  <benchmark>/predictions.jsonl  question_id, image, prompt, max_new_tokens, answer and the reference fields
  <benchmark>/scores.json        the benchmark's scores
  specificity.json               headline score per benchmark (percent) and their average
  run.json                       what produced the predictions (run_info), checked on resume
"""
from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

from safeeraser.io import DataError, append_jsonl, atomic_write_json, read_jsonl_tolerant
from safeeraser.progress import progress as progress_bar
from safeeraser.specificity.base import Benchmark, PredictFn, Question, Request
from safeeraser.specificity.registry import get_benchmark, parse_benchmark_names
from safeeraser.specificity.score import score_rows
from safeeraser.specificity.summary import summarize

log = logging.getLogger(__name__)


def select_questions(questions: list[Question], limit: int | None, seed: int) -> list[Question]:
    """`limit` groups (questions, or MMBench questions with all their rotations) drawn with `seed`,
    in file order; all of them when limit is None."""
    groups = list(dict.fromkeys(q.sample_group for q in questions))
    if limit is None or limit >= len(groups):
        return questions
    chosen = set(random.Random(seed).sample(groups, limit))
    return [q for q in questions if q.sample_group in chosen]


def _read_previous(path: Path) -> dict[str, dict]:
    """Rows already written, by question id (a later row for the same id wins). A torn last line from a
    killed run is skipped here and cut by the next append (append_jsonl)."""
    return {str(r["question_id"]): r for r in read_jsonl_tolerant(path) if "question_id" in r}


def _already_answered(row: dict | None, question: Question, budget: int) -> bool:
    return row is not None and row.get("prompt") == question.prompt and row.get("max_new_tokens") == budget


def answer_questions(benchmark: Benchmark, questions: list[Question], predict_fn: PredictFn, path: Path,
                     max_new_tokens: int | None, chunk_size: int, progress: bool) -> list[dict]:
    """Rows (prediction + current reference) for `questions`, generating only those that have no row
    with the same prompt and token budget in `path`; each chunk is appended as soon as it is answered."""
    previous = _read_previous(path)
    budget = max_new_tokens or benchmark.max_new_tokens
    todo = [q for q in questions if not _already_answered(previous.get(q.question_id), q, budget)]
    with progress_bar(total=len(todo), desc=benchmark.name, unit="q", disable=not progress or not todo) as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            answers = predict_fn([Request(q.question_id, q.image, q.prompt, budget) for q in chunk])
            if len(answers) != len(chunk) or not all(isinstance(a, str) for a in answers):
                raise TypeError(f"predict_fn must return one string per request: got {len(answers)} answers "
                                f"for {len(chunk)} requests")
            rows = [{"question_id": q.question_id, "image": str(q.image) if q.image else None, "prompt": q.prompt,
                     "max_new_tokens": budget, "answer": answer, **q.reference} for q, answer in zip(chunk, answers)]
            append_jsonl(path, rows)
            previous.update((row["question_id"], row) for row in rows)
            bar.update(len(chunk))
    # Score against the references as read now, should the annotation files have changed since.
    return [{**previous[q.question_id], **q.reference} for q in questions]


def _check_run_info(output_dir: Path, run_info: dict | None) -> None:
    """Refuse to mix predictions of two models in one output_dir."""
    if run_info is None:
        return
    path = output_dir / "run.json"
    if path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded != run_info:
            raise DataError(f"{output_dir} holds predictions of another run ({recorded}); this run is {run_info}. "
                            "Use another --output_dir, or delete that one")
    else:
        atomic_write_json(path, run_info)


def run_specificity(predict_fn: PredictFn, benchmarks: list[str] | str, data_root: str | os.PathLike,
                    output_dir: str | os.PathLike, limit: int | None = None, seed: int = 0, *, grader=None,
                    max_new_tokens: int | None = None, chunk_size: int = 64, run_info: dict | None = None,
                    progress: bool = True) -> dict:
    """Answer and score `benchmarks` (names from registry.BENCHMARKS, or one "gqa,pope" string) from
    their folders under `data_root`; write the files listed in this module's docstring; return
    specificity.json's content.

    `predict_fn` gets at most `chunk_size` requests per call and is never called for questions
    already answered in output_dir (resume). `limit` questions per benchmark are drawn with `seed`.
    `max_new_tokens` overrides every benchmark's default. `grader` grades MM-Vet (default: the
    offline grader, which leaves MM-Vet without a score)."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    data_root, output_dir = Path(data_root), Path(output_dir)
    names = parse_benchmark_names(benchmarks if isinstance(benchmarks, str) else ",".join(benchmarks))
    benches = [get_benchmark(name, grader) for name in names]
    selected = {}
    for bench in benches:  # every file checked before the first question is asked
        folder = bench.find_folder(data_root)
        questions = bench.load(folder, workdir=output_dir / bench.name)
        if not questions:
            raise DataError(f"{bench.name}: no questions in {folder}")
        selected[bench.name] = select_questions(questions, limit, seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_run_info(output_dir, run_info)
    results = {}
    for bench in benches:
        folder = output_dir / bench.name
        rows = answer_questions(bench, selected[bench.name], predict_fn, folder / "predictions.jsonl",
                                max_new_tokens, chunk_size, progress)
        scores = {**score_rows(bench, rows), "limit": limit, "seed": seed}
        atomic_write_json(folder / "scores.json", scores)
        log.info("%s: %s", bench.name, "n/a" if scores["score"] is None else f"{scores['score']:.2f}")
        results[bench.name] = scores
    summary = summarize(results, backend="native")
    atomic_write_json(output_dir / "specificity.json", summary)
    return summary
