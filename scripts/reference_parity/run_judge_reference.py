"""Run the UNMODIFIED reference eval_all.py against a scripted fake judge and record every judge call.

Reference venv:

    python run_judge_reference.py --ref REF --work WORK --answers ANSWERS.json --refer REFER.json \
        --replies REPLIES.json --out OUT.json

ANSWERS is a ckpt_infer-style output (records with model_response1..3 and sd_response per unsafe pair,
UnharmPair Predictions overwritten by the model); REFER the dataset it came from. REPLIES maps an answer
substring to the judge's reply: a call gets the reply of the FIRST key (file order) found in its user
message, so the reply depends only on which answer the prompt carries. The reply `__raise__` makes the
fake raise a requests exception, so the reference's own retry loop ends in its failure sentinel; its
sleep between retries is made a no-op. A prompt no key matches stops the run (error in OUT.json).

eval_all.py runs in this process (runpy, cwd WORK) on a copy of ANSWERS in OUT's side folder
(<OUT stem>_files/), because it writes `<input>_with_scores.json` next to its input. OUT.json holds:
`calls` ({model, messages, matched, reply} in order), `stats` (the `<rr stem>.txt` file it writes),
`with_scores` and `rr_labels` (its two JSON outputs), `sleeps`, the reference commit and any error.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


class UnmatchedPrompt(BaseException):
    """BaseException: eval_all's retry loop catches Exception and would hide a policy gap."""


class FakeResponse:
    def __init__(self, text: str):
        self.text = text

    def raise_for_status(self) -> None:
        pass

    def json(self) -> dict:  # the chat-completions shape the reference reads
        return {"choices": [{"message": {"role": "assistant", "content": self.text}}]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("ref", "work", "answers", "refer", "replies", "out"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    a = ap.parse_args()
    ref, work, out = a.ref.resolve(), a.work.resolve(), a.out.resolve()
    replies = json.loads(a.replies.read_text())
    files = out.parent / f"{out.stem}_files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    answers = files / "answers.json"
    shutil.copyfile(a.answers, answers)
    rr = files / "answers_rr.json"

    sys.dont_write_bytecode = True  # keep REF as extracted
    sys.path[:0] = [str(ref), str(HERE)]
    os.chdir(work)
    import requests

    from run_reference import reference_commit, REF_GIT

    rec = {"calls": [], "sleeps": [], "stats": None, "with_scores": None, "rr_labels": None, "error": None,
           "argv": None, "reference": reference_commit(ref, REF_GIT), "requests": requests.__version__}

    def fake_post(url, headers=None, data=None, timeout=None, **kw):
        body = json.loads(data)
        user = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        matched = [k for k in replies if k in user]
        call = {"model": body.get("model"), "messages": body["messages"], "matched": matched,
                "reply": replies[matched[0]] if matched else None}
        rec["calls"].append(call)
        if not matched:
            raise UnmatchedPrompt(f"no REPLIES key occurs in call {len(rec['calls'])}")
        if call["reply"] == "__raise__":
            raise requests.exceptions.ConnectionError("scripted judge failure")
        return FakeResponse(call["reply"])

    requests.post = fake_post
    time.sleep = lambda secs: rec["sleeps"].append(secs)  # the retry delay, skipped

    script = ref / "eval_all.py"
    sys.argv = [str(script), "--api_key", "x", "--input_file", str(answers), "--output_file_rr", str(rr),
                "--file_refer", str(a.refer.resolve())]
    rec["argv"] = sys.argv[1:]
    rc = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
    except (Exception, UnmatchedPrompt) as e:  # noqa: BLE001 - recorded in OUT.json, rc 1
        frame = traceback.extract_tb(e.__traceback__)[-1]
        rec["error"] = {"type": type(e).__name__, "message": str(e), "raised_at": f"{frame.filename}:{frame.lineno}"}
        rc = 1
    for key, path in (("stats", rr.with_suffix(".txt")), ("rr_labels", rr),
                      ("with_scores", files / "answers_with_scores.json")):
        if path.exists():
            rec[key] = json.loads(path.read_text())
    out.write_text(json.dumps(rec, indent=1, ensure_ascii=False))
    print(f"{len(rec['calls'])} judge calls; stats: {json.dumps(rec['stats'])}; error: {rec['error']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
