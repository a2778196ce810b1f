"""`safeeraser judge-agreement`: how far two judges agree on the same answers, from their judged files.

    safeeraser judge-agreement --a val_rr_openai.json --b val_rr_wildguard.json [--output agreement.json]

Both files are eval_all outputs (--output_file_rr) over the same answers; no judge is called. Per
metric (ASR, RR, SARR): the items both judges labelled, Cohen's kappa, the confusion matrix, each
judge's rate over its own labelled items and over the shared ones, and the difference (b - a) in
points. Unknown labels are left out and counted; a metric one judge cannot produce is n/a.

Judge caches are not accepted: they hold raw replies under a hash of each judge's own prompt, so two
judges' caches have no items in common to compare.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from safeeraser.eval import judged_metrics
from safeeraser.eval.judges.base import UNKNOWN
from safeeraser.io import DataError, atomic_write_json, read_json_records


def _labels(path: Path) -> tuple[list[tuple], dict[str, list]]:
    """(item identities, {metric: labels in item order}) of one judged file."""
    records = read_json_records(path)
    ids: list[tuple] = []
    metrics = judged_metrics.labelled()
    labels: dict[str, list] = {m.name: [] for m in metrics}
    # an item is one answer: a metric over the answers an earlier one covers (RR, ASR's) adds no items
    new_items = [m.answers not in [e.answers for e in metrics[:k]] for k, m in enumerate(metrics)]
    for i, record in enumerate(records):
        pairs = record.get("unsafe_pairs")
        if not isinstance(pairs, list):
            raise DataError(f"{path}: record {i}: field 'unsafe_pairs': missing; is this a judged file (eval_all "
                            "--output_file_rr)?")
        for j, pair in enumerate(pairs):
            for k, metric in enumerate(metrics):
                for key, name in metric.fields():
                    if name not in pair:
                        raise DataError(f"{path}: record {i}: field 'unsafe_pairs[{j}].{name}': missing; is this "
                                        "a judged file (eval_all --output_file_rr)?")
                    labels[metric.name].append(pair[name])
                    if new_items[k]:
                        ids.append((i, j, key, pair.get("question"), pair.get(key)))
    return ids, labels


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired labels; None when it is undefined (no items, or chance agreement is 1)."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(a == b for a, b in pairs) / n
    count_a, count_b = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def _rate(labels: list, positive: str) -> float | None:
    known = [x for x in labels if x not in (None, UNKNOWN)]
    return sum(x == positive for x in known) / len(known) if known else None


def _points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def compare(a: Path, b: Path) -> dict:
    ids_a, labels_a = _labels(a)
    ids_b, labels_b = _labels(b)
    if len(ids_a) != len(ids_b):
        raise DataError(f"{b}: {len(ids_b)} judged answers, but {a} has {len(ids_a)}: not the same answers")
    for x, y in zip(ids_a, ids_b):
        if x != y:
            raise DataError(f"{b}: record {y[0]}: field 'unsafe_pairs[{y[1]}].{y[2]}': not the answer judged in {a} "
                            "(question or answer differs)")
    result = {"a": str(a), "b": str(b)}
    for m in judged_metrics.labelled():
        metric, positive = m.name, m.hit
        la, lb = labels_a[metric], labels_b[metric]
        if all(x is None for x in la) or all(x is None for x in lb):
            result[metric] = {"available": False, "items": len(la)}
            continue
        both = [(x, y) for x, y in zip(la, lb) if x not in (None, UNKNOWN) and y not in (None, UNKNOWN)]
        confusion: dict[str, dict[str, int]] = {}
        for x, y in both:
            confusion.setdefault(x, {}).setdefault(y, 0)
            confusion[x][y] += 1
        shared_a = _rate([x for x, _ in both], positive)
        shared_b = _rate([y for _, y in both], positive)
        result[metric] = {
            "available": True,
            "items": len(la),
            "both_labelled": len(both),
            "a_unknown": sum(x == UNKNOWN for x in la),
            "b_unknown": sum(y == UNKNOWN for y in lb),
            "agreement": (sum(x == y for x, y in both) / len(both)) if both else None,
            "kappa": cohen_kappa(both),
            "confusion": confusion,  # a's label -> b's label -> items
            "rate_a": _points(_rate(la, positive)),
            "rate_b": _points(_rate(lb, positive)),
            "rate_a_shared": _points(shared_a),
            "rate_b_shared": _points(shared_b),
            "difference_shared": None if shared_a is None or shared_b is None else _points(shared_b - shared_a),
        }
    return result


def format_report(result: dict) -> str:
    def show(value, fmt="{:.2f}"):
        return "n/a" if value is None else fmt.format(value)

    lines = [f"a: {result['a']}", f"b: {result['b']}",
             f"{'metric':<7} {'items':>6} {'both':>6} {'unk a':>6} {'unk b':>6} {'agree':>6} {'kappa':>6} "
             f"{'rate a':>7} {'rate b':>7} {'b - a':>7}"]
    for metric in (m.name for m in judged_metrics.labelled()):
        r = result[metric]
        if not r["available"]:
            lines.append(f"{metric:<7} {r['items']:>6}  n/a: one judge cannot produce {metric}")
            continue
        lines.append(f"{metric:<7} {r['items']:>6} {r['both_labelled']:>6} {r['a_unknown']:>6} {r['b_unknown']:>6} "
                     f"{show(r['agreement']):>6} {show(r['kappa'], '{:.3f}'):>6} {show(r['rate_a_shared']):>7} "
                     f"{show(r['rate_b_shared']):>7} {show(r['difference_shared']):>7}")
        for label_a, row in sorted(r["confusion"].items()):
            cells = ", ".join(f"b {label_b}: {n}" for label_b, n in sorted(row.items()))
            lines.append(f"        a {label_a}: {cells}")
    lines.append("rates in % over the answers both judges labelled; kappa n/a when undefined")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safeeraser judge-agreement", description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="a judged file (eval_all --output_file_rr) from one judge")
    p.add_argument("--b", required=True, help="the judged file of the same answers from another judge")
    p.add_argument("--output", help="also write the comparison as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = compare(Path(args.a), Path(args.b))
        if args.output:
            if Path(args.output).resolve() in (Path(args.a).resolve(), Path(args.b).resolve()):
                raise DataError(f"--output {args.output}: would overwrite an input")
            atomic_write_json(args.output, result)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
