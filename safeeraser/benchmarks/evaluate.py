"""A benchmark's tasks on a model: its eval items answered by the generation engine (greedy, as the
benchmarks' own evaluations decode), each task scored by the benchmark's score function."""
from __future__ import annotations

from pathlib import Path

from safeeraser.benchmarks.base import Benchmark


def evaluate_split(generator, bench: Benchmark, root: Path, split: str, max_new_tokens: int = 50) -> dict:
    """{task: score} for one split; `generator` is infer.engine.Generator over the model to evaluate."""
    from safeeraser.infer.engine import GenRequest, GenSettings

    if bench.eval_items is None:
        raise ValueError(f"{bench.name} has no evaluation tasks yet")
    settings = GenSettings(max_new_tokens=max_new_tokens, greedy=True)
    scores = {}
    for task, items in bench.eval_items(Path(root), split).items():
        if not items:
            continue
        answers = generator.generate([GenRequest(image, prompt, key=i) for i, (image, prompt, _) in enumerate(items)],
                                     settings)
        scores[task] = bench.tasks[task]([a[0] for a in answers], [ref for _, _, ref in items])
    return scores
