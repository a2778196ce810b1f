"""Judging: our OpenAI judge (bounded async concurrency) against one request at a time, both talking to
a local OpenAI-compatible server (`judge_server`, its own process) that answers after a fixed delay.

The items are SafeEraser judge items built from the mini val file (ASR and RR on three sampled answers,
SARR on the SD answer, GPT-Eval on the harmless pairs), every prompt distinct. The reference-style
side sends the same prompts with the same parameters and reads the replies with the same parsers, one
request after the other (without the reference's 30 s sleeps, which would only widen the gap).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from functools import partial

from safeeraser.bench.judge_server import label_for
from safeeraser.data.records import load_benchmark
from safeeraser.eval.judges import ChatSettings, make_judge
from safeeraser.eval.judges.base import ASR, JudgeItem, OK, RR, RR_SD, SCORE
from safeeraser.eval.judges.parsing import parse_choice, parse_score
from safeeraser.eval.judges.prompts import CHOICES, build_prompt


class ServerProcess:
    """The judge server in its own process, so that its threads do not share our interpreter."""

    def __init__(self, delay: float):
        self.delay = delay
        self.proc = None
        self.url = ""

    def __enter__(self) -> "ServerProcess":
        cmd = [sys.executable, "-m", "safeeraser.bench.judge_server", "--delay", str(self.delay)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("PORT "):
            self.__exit__()
            raise RuntimeError(f"the bench judge server did not start within 60 s: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _call(self, path: str, method: str) -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict:
        return self._call("/stats", "GET")

    def reset(self) -> None:
        self._call("/reset", "POST")


def judge_items(val_file: str, n: int):
    """`n` judge items with distinct prompts, from the val file's pairs (cycled with variants if needed)."""

    records = load_benchmark(val_file)
    items: list = []
    variant = 0
    while len(items) < n:
        for rec in records:
            # Records of a category share questions and answers: the tag keeps every prompt distinct
            # (the judge sends one request per distinct prompt).
            tag = f" (record {rec.index}, variant {variant})"
            for j, pair in enumerate(rec.unsafe_pairs):
                for k in range(1, 4):
                    answer = f"{pair['model_response']} [pair {j}, sample {k}]{tag}"
                    items.append(JudgeItem(ASR, pair["question"], answer, category=rec.category))
                    items.append(JudgeItem(RR, pair["question"], answer))
                items.append(JudgeItem(RR_SD, pair["question"], f"{pair['sd_response']} [pair {j}]{tag}"))
            for _, unharm in rec.unharm_pairs():
                items.append(JudgeItem(SCORE, unharm["Question"], unharm["Prediction"] + tag,
                                       reference=unharm["Prediction"]))
        variant += 1
    return items[:n]


def reference_judge(items, url: str, model: str, api_key: str, timeout: float, max_tokens: int | None):
    """One request at a time with the synchronous client, replies read by our parsers."""
    import openai

    extra = {"max_tokens": max_tokens} if max_tokens else {}
    values = []
    with openai.OpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=timeout) as client:
        for item in items:
            response = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": build_prompt(item)}], temperature=0, **extra)
            reply = response.choices[0].message.content or ""
            parse = parse_score if item.kind == SCORE else partial(parse_choice, options=CHOICES[item.kind])
            values.append(parse(reply))
    return values


def _expected_value(item):
    """The label the server's rule gives this item, read by the same parser."""
    reply = label_for(build_prompt(item))
    return parse_score(reply) if item.kind == SCORE else parse_choice(reply, CHOICES[item.kind])


def _no_proxy_for_localhost() -> None:
    for var in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(var, "").split(",") if h]
        os.environ[var] = ",".join(dict.fromkeys(hosts + ["127.0.0.1", "localhost"]))


def measure_judging(val_file: str, n_items: int, concurrency: int, delay: float, reference_items: int = 0) -> dict:
    """Ours on `n_items`, one-at-a-time on the first `reference_items` (0: all): its time per label is
    constant, so its rate needs fewer. Ours must equal it on those, and the server's rule on all."""
    import openai  # noqa: F401  (imported before the clock starts, on both sides)

    _no_proxy_for_localhost()
    items = judge_items(val_file, n_items)
    ref_items = items[:reference_items] if reference_items else items
    api_key, model = "sk-bench-local", "bench-judge"
    with ServerProcess(delay) as server:
        settings = ChatSettings(model=model, base_url=server.url, api_key=api_key, concurrency=concurrency,
                                timeout=30.0, max_retries=2)
        judge = make_judge("openai", settings=settings, cache_path=None)
        server.reset()
        t0 = time.perf_counter()
        judgments = judge.judge(items)
        ours_s = time.perf_counter() - t0
        ours_stats = server.stats()
        server.reset()
        t0 = time.perf_counter()
        ref_values = reference_judge(ref_items, server.url, model, api_key, settings.timeout, settings.max_tokens)
        ref_s = time.perf_counter() - t0
        ref_stats = server.stats()
    ours_values = [j.value for j in judgments]
    expected = [_expected_value(item) for item in items]  # what the server's rule says for every item
    lost = sum(1 for j in judgments if j.status != OK)
    duplicated = ours_stats["requests"] - ours_stats["distinct_prompts"]
    return {
        "items": len(items), "reference_items": len(ref_items), "concurrency": concurrency, "server_delay_s": delay,
        "ours": {"seconds": ours_s, "labels_per_s": len(items) / ours_s, "requests": ours_stats["requests"],
                 "max_in_flight": ours_stats["max_in_flight"], "cost": judge.cost()},
        "reference": {"seconds": ref_s, "labels_per_s": len(ref_items) / ref_s, "requests": ref_stats["requests"],
                      "max_in_flight": ref_stats["max_in_flight"]},
        "labels_match": ours_values[:len(ref_items)] == ref_values,
        "mismatches": sum(1 for a, b in zip(ours_values, ref_values) if a != b),
        "labels_as_served": sum(1 for a, b in zip(ours_values, expected) if a == b),
        "lost": lost, "duplicated": duplicated,
        "all_served_once": ours_stats["requests"] == ours_stats["distinct_prompts"] == len(items),
    }
