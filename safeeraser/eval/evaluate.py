"""SafeEraser evaluation: judge the answers, score the UnharmPairs, write the reference's outputs.

The judged JSON is the input records, every key kept, with per unsafe pair
  gpt_result_ASR_model_response{1,2,3}: "unsafe" | "safe" | "unknown"
  gpt_result_RR_model_response{1,2,3}:  "refuse" | "not_refuse" | "unknown"
  gpt_result_RR_sd_response:            "normal" | "not_normal" | "unknown"   (SARR counts not_normal)
and per UnharmPair_*: rougeL (reference orientation), rougeL_f1, and gpt_score: a number in [0, 1],
"unknown", or null when the judge has no scores. A label the judge cannot produce (e.g. RR for Llama
Guard) is null, and its rate is None ("n/a"). The stats file holds the dict evaluate() returns.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from safeeraser.data.records import UNHARM_KEYS
from safeeraser.eval.bootstrap import rate_cis
from safeeraser.eval.degenerate import degenerate_by_view
from safeeraser.eval import metrics
from safeeraser.eval.judges import make_judge
from safeeraser.eval.judges.base import ASR, KINDS, RR, RR_SD, SCORE, Judge, JudgeItem
from safeeraser.eval.matching import MODEL_RESPONSES, SD_RESPONSE, MatchedRecord, load_matched
from safeeraser.eval.reference_rules import AGGREGATES, reference_stats
from safeeraser.eval.rouge import rouge_l
from safeeraser.io import atomic_write_json
from safeeraser.progress import progress
from safeeraser.provenance import environment, file_sha256


def stats_path_for(output_file: str | os.PathLike) -> Path:
    """The reference's stats file: the output's stem with `.txt`, holding JSON."""
    return Path(output_file).with_suffix(".txt")


def default_cache_path(output_file: str | os.PathLike) -> Path:
    return Path(f"{output_file}.judge_cache.jsonl")


def evaluate(
    input_file: str | os.PathLike,
    refer_file: str | os.PathLike,
    output_file: str | os.PathLike,
    judge: Judge | str = "openai",
    *,
    show_progress: bool = True,
    matched: list[MatchedRecord] | None = None,
    aggregate: str = "ours",
) -> dict:
    """Evaluate ckpt_infer's answers in `input_file` against the dataset `refer_file`.

    Writes the judged records to `output_file` and the stats to stats_path_for(output_file); returns
    the stats: {"stats_asr_rr", "stats_unharmpair", "summary" (percent), "judge", "cost"}.
    A judge given by name uses its defaults, with the cache beside `output_file`. `matched`: the two
    files already read by load_matched (a caller that checks them before making its judge).
    Raises DataError for bad input files and JudgeConfigError when the judge cannot run.
    aggregate="reference" adds the SafeEraser code's own counts and rates as "reference_aggregate"
    (eval/reference_rules.py) beside ours.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if matched is None:
        matched = load_matched(input_file, refer_file)
    if isinstance(judge, str):
        judge = make_judge(judge, cache_path=default_cache_path(output_file))
    judge.check_data([m.dataset for m in matched], str(refer_file))
    judged = [copy.deepcopy(m.answers) for m in matched]

    # Items to judge, each with the (object, field) that receives its label in the judged JSON.
    items: list[JudgeItem] = []
    slots: list[tuple[dict, str]] = []
    rouge_scores = []
    for m, record in zip(matched, judged, strict=True):
        for pair in record["unsafe_pairs"]:
            for key in MODEL_RESPONSES:
                for kind in (ASR, RR):
                    items.append(JudgeItem(kind, pair["question"], pair[key], category=m.category, image=str(m.image)))
                    slots.append((pair, f"gpt_result_{kind}_{key}"))
            items.append(JudgeItem(RR_SD, pair["question"], pair[SD_RESPONSE]))
            slots.append((pair, "gpt_result_RR_sd_response"))
        for key in UNHARM_KEYS:
            unharm, expected = record[key], m.dataset[key]["Prediction"]
            score = rouge_l(unharm["Prediction"], expected)
            unharm["rougeL"], unharm["rougeL_f1"] = score.reference_orientation, score.f1
            rouge_scores.append(score)
            items.append(JudgeItem(SCORE, unharm["Question"], unharm["Prediction"], reference=expected))
            slots.append((unharm, "gpt_score"))

    with progress(total=len(items), desc="judging", unit="item", disable=not show_progress) as bar:
        judgments = judge.judge(items, progress=bar.update)
    for (target, field), judgment in zip(slots, judgments, strict=True):
        target[field] = judgment.stored()

    by_kind = {kind: [j for item, j in zip(items, judgments, strict=True) if item.kind == kind] for kind in KINDS}
    empty = {kind: sum(not item.answer.strip() for item in items if item.kind == kind) for kind in (ASR, RR_SD, SCORE)}
    stats_asr_rr = metrics.asr_rr_stats(
        by_kind[ASR],
        by_kind[RR],
        by_kind[RR_SD],
        empty_responses=empty[ASR],
        empty_sd_responses=empty[RR_SD],
        unknown_category_records=sum(m.category is None for m in matched),
    )
    stats_unharmpair = metrics.unharmpair_stats(rouge_scores, by_kind[SCORE], empty_predictions=empty[SCORE])
    cis = rate_cis(judged, source=str(output_file))
    stats = {
        "stats_asr_rr": stats_asr_rr,
        "stats_unharmpair": stats_unharmpair,
        "summary": metrics.summary(stats_asr_rr, stats_unharmpair),
        # 95% intervals of the summary's rates, resampling images (percent); "ci_method" names the
        # count-based ones (where every resample gave the same value)
        "ci": {name: None if ci.low is None else [100 * ci.low, 100 * ci.high] for name, ci in cis.items()},
        "ci_method": {name: ci.method for name, ci in cis.items() if ci.low is not None},
        # so that "forgot everything" and "says nothing" cannot look alike
        "degenerate": degenerate_by_view([m.answers for m in matched], str(input_file)),
        "judge": judge.describe(),
        "cost": judge.cost(),
        "provenance": {**environment(), "input_sha256": file_sha256(input_file),
                       "refer_sha256": file_sha256(refer_file)},
    }
    if aggregate == "reference":
        precision = [score.reference_orientation for score in rouge_scores]
        stats["reference_aggregate"] = reference_stats(items, judgments, precision)
    atomic_write_json(output_file, judged)
    atomic_write_json(stats_path_for(output_file), stats)
    return stats
