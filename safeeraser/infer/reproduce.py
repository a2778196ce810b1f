"""How often greedy answers reproduce their targets: the check that a vanilla model answers everything."""
from __future__ import annotations

from safeeraser.data.records import Record
from safeeraser.infer.engine import GenRequest, GenSettings, Generator, answers_match

KINDS = ("harmful", "sd", "unharm")


def reproduction_rates(generator: Generator, records: list[Record], max_new_tokens: int = 64) -> dict:
    """Share of greedy answers equal to the dataset's, per kind: harmful (model_response on the
    harmful image), sd (sd_response on the SD image), unharm (UnharmPair Prediction). Also returns samples."""
    requests, targets, kinds = [], [], []
    for rec in records:
        for pair in rec.unsafe_pairs:
            requests += [GenRequest(rec.image, pair["question"]), GenRequest(rec.sd_image, pair["question"])]
            targets += [pair["model_response"], pair["sd_response"]]
            kinds += ["harmful", "sd"]
        for _, p in rec.unharm_pairs():
            requests.append(GenRequest(rec.image, p["Question"]))
            targets.append(p["Prediction"])
            kinds.append("unharm")
    answers = generator.generate(requests, GenSettings(max_new_tokens=max_new_tokens, greedy=True))
    rates, samples = {}, {}
    for kind in KINDS:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        hits = sum(answers_match(answers[i][0], targets[i]) for i in idx)
        rates[kind] = {"matched": hits, "total": len(idx), "rate": hits / len(idx) if idx else None}
        if idx:
            i = idx[0]
            samples[kind] = {"question": requests[i].question, "image": str(requests[i].image),
                             "target": targets[i], "answer": answers[i][0]}
    return {"rates": rates, "samples": samples}
