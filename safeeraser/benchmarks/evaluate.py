"""A benchmark's tasks on a model: its eval items answered by the generation engine (greedy, as the
benchmarks' own evaluations decode), each task scored by the benchmark's score function; and, for the
TOFU-style benchmarks, the answer losses the truth ratio, the answer probability and forget quality read
(eval/forget_quality.py)."""
from __future__ import annotations

from safeeraser.benchmarks.base import Benchmark
from safeeraser.data.views import Example
from safeeraser.eval.forget_quality import answer_probability, truth_ratio_score, truth_ratios
from safeeraser.eval.likelihood import answer_nll


def unit_of(item: tuple) -> str:
    """The unit an eval item is resampled with (intervals): its 4th element where the benchmark gives one (the
    record it asks about), else its image (a record's questions share its image)."""
    return str(item[3] if len(item) > 3 else item[0])


def evaluate_split(generator, bench: Benchmark, tasks: dict[str, list[tuple]], max_new_tokens: int = 50,
                   answers: dict | None = None) -> dict:
    """{task: score} for one split's `tasks` (its bench.eval_items); `generator` is infer.engine.Generator over
    the model to evaluate. With `answers` (a dict), each task's answers are kept there too, in the items'
    order."""
    from safeeraser.infer.engine import GenRequest, GenSettings

    settings = GenSettings(max_new_tokens=max_new_tokens, greedy=True)
    scores = {}
    for task, items in tasks.items():
        if not items:
            continue
        made = generator.generate([GenRequest(item[0], item[1], key=i) for i, item in enumerate(items)], settings)
        texts = [a[0] for a in made]
        scores[task] = bench.tasks[task](texts, [item[2] for item in items])
        if answers is not None:
            answers[task] = texts
    return scores


def likelihood_split(model, processor, bench: Benchmark, items: list[tuple], split: str, batch_size: int = 8) -> dict:
    """The truth-ratio scores of a split from its `items` (its bench.likelihood_items): per question the
    answer's, the paraphrased answer's and the perturbed answers' mean token losses
    (eval/likelihood.answer_nll), then the truth ratios, their score and the answer probability, as a forget
    split or a kept one is scored."""
    if not items:  # a split without paraphrased and perturbed answers
        return {}
    flat = [Example(im, q, a) for im, q, a, _, _ in items] + [Example(im, q, p) for im, q, _, p, _ in items]
    flat += [Example(im, q, x) for im, q, _, _, perturbed in items for x in perturbed]
    losses = [s.nll for s in answer_nll(model, processor, flat, batch_size=batch_size)]
    n = len(items)
    answer, paraphrased, rest = losses[:n], losses[n:2 * n], iter(losses[2 * n:])
    perturbed = [[next(rest) for _ in item[4]] for item in items]
    ratios = truth_ratios(paraphrased, perturbed)
    forget = bench.forgets(split)
    return {"truth_ratio": truth_ratio_score(ratios, forget=forget),
            "probability": answer_probability(answer, None if forget else perturbed),
            "truth_ratios": ratios.tolist(), "questions": n}
