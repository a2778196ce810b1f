"""Compare the reference's recorded step 0 and judge run with ours, print the table, write the fixture.

    .venv/bin/python scripts/reference_parity/record.py --work WORK --reference-dir REF --ours WORK/ours.json \
        [--fixture tests/fixtures/reference_parity.json]

Reads WORK/reference/<loss>[_perturbed].json and WORK/reference/judge.json (run_reference.py and
run_judge_reference.py) and our values (run_ours.py). The fixture keeps the reference's numbers, token ids
and labels, its aggregated judge stats and a digest of each distinct prompt it sent (never the prompts:
they are the reference's text); tests/train/test_reference_parity.py checks reference mode against it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_ours import LOSSES, TERM_OF  # noqa: E402

REL_TOL = 1e-5
BATCH_LOSSES = ("gdpd", "idkpd", "klpd")  # their first batches hold every view: forget, idk, retain, pd


def messages_digest(messages) -> str:
    return hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def weights_digest(model_dir: Path) -> str:
    """sha256 over the tensors by name: the same for the same weights whatever the file's metadata."""
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for name, t in sorted(load_file(str(model_dir / "model.safetensors")).items()):
        h.update(name.encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def reference_terms(run: dict) -> dict:
    """Our term name -> the reference's value, from its per-forward losses and its kl_div calls."""
    terms = {TERM_OF[c["inputs"]]: c["loss"] for c in run["losses"] if not c["inputs"].startswith("oracle")}
    if run["kl"]:
        # kl's current-model retain pass is no loss term of ours: its KL is
        terms.pop("retain", None)
        terms["kl"] = run["kl"][0]
    return terms


def relative_difference(term: str, got, ref: float, terms: dict) -> float:
    """|got - ref| relative to the term's size; a total relative to the sum of its terms' sizes (a
    weighted sum that nearly cancels, gd's, would otherwise turn float noise into a large ratio); a term
    that is 0 (KL at step 0) in absolute terms."""
    if got is None:
        return float("inf")
    scale = sum(abs(v) for k, v in terms.items() if k != "total") if term == "total" else abs(ref)
    return abs(got - ref) / scale if scale else abs(got - ref)


def _rows(batch: dict) -> dict:
    return {k: batch[k][0] for k in ("input_ids", "labels", "attention_mask")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reference-dir", type=Path, required=True)
    ap.add_argument("--ours", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True, help="our tiny LLaVA (its weights' digest goes in the fixture)")
    ap.add_argument("--fixture", type=Path)
    a = ap.parse_args()
    from safeeraser.models.families import family_for
    from safeeraser.reference.checkout import inference_tags, training_tags

    ours = json.loads(a.ours.read_text())
    fixture = {"about": "The SafeEraser code's step 0 of its eight losses on the parity case (scripts/reference_parity/"
                        "case.py) and its judge run on the judge case, recorded by scripts/reference_parity.sh; "
                        "`tags` are its training conversation tags as its config/model_config.yaml holds them "
                        "(the system prompt is FastChat's Vicuna v1.1 one); prompts are kept as digests only",
               "model": {"family": "llava", "size": "tiny", "seed": 0,
                                                             "weights_sha256": weights_digest(a.model)},
               "tags": vars(training_tags(a.reference_dir, family_for("llava").reference_names)),
               "losses": {}, "batches": {}}
    worst, lines = 0.0, ["| loss | term | reference | ours (reference mode) | difference (relative) |",
                         "| --- | --- | ---: | ---: | ---: |"]
    for loss in LOSSES:
        for suffix in ("", "_perturbed"):
            key = loss + suffix
            run = json.loads((a.work / "reference" / f"{key}.json").read_text())
            fixture.setdefault("reference", {"commit": run["reference"]["commit"], "versions": run["versions"]})
            terms = {**reference_terms(run), "total": run["total"]}
            fixture["losses"][key] = {"terms": terms, "lr": run["lr_at_first_step"]}
            mine = {**ours[key]["terms"], "total": ours[key]["total"]}
            for term, ref in terms.items():
                got = mine.get(term)
                rel = relative_difference(term, got, ref, terms)
                worst = max(worst, rel)
                lines.append(f"| {key} | {term} | {ref:.9f} | {got:.9f} | {rel:.1e} |")
            if loss in BATCH_LOSSES and not suffix:
                views = dict(zip(("forget" if not loss.startswith("idk") else "idk", "retain", "pd"),
                                 (_rows(run["batch"][v]) for v in ("forget", "retain", "pd"))))
                fixture["batches"][key] = views
                same = all(ours[key]["batch"][v] == rows for v, rows in views.items())
                lines.append(f"| {key} | token ids, labels, mask of every view | | | {'equal' if same else 'DIFFER'} |")
                worst = worst if same else float("inf")
    ref_prompt = json.loads((a.work / "reference" / "infer_prompt.json").read_text())
    fixture["infer_prompt"] = {"input_ids": ref_prompt["input_ids"], "tags": vars(inference_tags(a.reference_dir))}
    prompt_same = ref_prompt["input_ids"] == ours["infer_prompt"]
    lines += ["", f"inference prompt (ckpt_infer, --prompt_format reference), token ids: "
                  f"{'equal' if prompt_same else 'DIFFERENT'} ({len(ref_prompt['input_ids'])} tokens)"]
    uneven = json.loads((a.work / "reference" / "uneven_gdpd.json").read_text()).get("error")
    lines += ["", f"more harmless than unsafe pairs (dataset/uneven.json, gdpd): the reference: {uneven}; "
                  f"ours in reference mode: {ours['uneven']}"]
    judge_ref = json.loads((a.work / "reference" / "judge.json").read_text())
    ref_msgs = sorted({messages_digest(c["messages"]) for c in judge_ref["calls"]})
    our_msgs = sorted({messages_digest(m) for m in ours["judge"]["messages"]})
    stats = {**judge_ref["stats"]["stats_asr_rr"], **judge_ref["stats"]["stats_unharmpair"]}
    fixture["judge"] = {"reference_aggregate": stats, "messages_sha256": ref_msgs,
                        "models": sorted({c["model"] for c in judge_ref["calls"]})}
    agg_same = all(abs(ours["judge"]["reference_aggregate"][k] - v) <= 1e-12 for k, v in stats.items())
    lines += ["", f"judge prompts: {len(ref_msgs)} distinct sent by the reference, {len(our_msgs)} by ours; "
                  f"{'identical' if ref_msgs == our_msgs else 'DIFFERENT'} (system and user messages, byte for byte)",
              f"reference aggregation: {'equal' if agg_same else 'DIFFERENT'}: " + json.dumps(stats),
              f"worst relative difference of a loss term: {worst:.1e} (tolerance {REL_TOL:.0e})"]
    print("\n".join(lines))
    ok = worst <= REL_TOL and ref_msgs == our_msgs and agg_same and prompt_same
    if a.fixture and ok:
        a.fixture.write_text(json.dumps(fixture, indent=1) + "\n")
        print(f"wrote {a.fixture}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
