"""VQA accuracy (VQAv2, VizWiz): an answer scores min(#humans who gave it / 3, 1), averaged over the
leave-one-out subsets of the human answers, after the VQA normalisation of both sides."""
from __future__ import annotations

from collections import defaultdict

from safeeraser.specificity.normalize import normalize_answer


def vqa_accuracy(answer: str, human_answers: list[str]) -> float:
    if not human_answers:
        raise ValueError("VQA accuracy needs at least one human answer")
    predicted = normalize_answer(answer)
    humans = [normalize_answer(h) for h in human_answers]
    total = 0.0
    for left_out in range(len(humans)):
        matches = sum(1 for i, h in enumerate(humans) if i != left_out and h == predicted)
        total += min(matches / 3, 1.0)
    return total / len(humans)


def score_vqa_rows(rows: list[dict]) -> dict:
    """Mean VQA accuracy (percent) overall and per answer type; rows hold answer, human_answers and
    answer_type."""
    by_type: dict[str, list[float]] = defaultdict(list)
    accuracies = []
    for row in rows:
        acc = vqa_accuracy(row["answer"], row["human_answers"])
        accuracies.append(acc)
        by_type[row.get("answer_type") or "unknown"].append(acc)
    return {
        "score": 100 * sum(accuracies) / len(accuracies),
        "n": len(accuracies),
        "per_answer_type": {t: 100 * sum(v) / len(v) for t, v in sorted(by_type.items())},
    }
