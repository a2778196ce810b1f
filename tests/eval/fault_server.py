"""An OpenAI-compatible server for the open-judge tests: /v1/chat/completions and /v1/completions on
127.0.0.1 (random port), answering each prompt by `rule(prompt)` in a guard model's documented output
format, and injecting faults by plan: `faults(prompt, attempt)` names the fault of that attempt, or None.

Faults: malformed (200, JSON cut mid-way), truncated (Content-Length larger than the body, then the
connection closes), html (200 text/html), plain (200 text/plain), empty_choices (200 {"choices": []}),
429 (with retry-after), 500, 503, timeout (answers after the client gave up)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter

from local_server import LocalServer, QuietHandler

FAULTS = ("malformed", "truncated", "html", "plain", "empty_choices", "429", "500", "503", "timeout")


def _between(text: str, start: str, end: str) -> str | None:
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, re.DOTALL)
    return match.group(1) if match else None


def answer_in(prompt: str) -> str:
    """The judged answer inside a Llama Guard 3, WildGuard or HarmBench prompt."""
    for start, end in (("Agent: ", "\n\n<END CONVERSATION>"), ("AI assistant:\n", "\n\n---"),
                       ("Generation:\n", "\n\n---")):
        found = _between(prompt, start, end)
        if found is not None:
            return found
    raise AssertionError(f"not a guard prompt: {prompt[:80]!r}")


def guard_reply(prompt: str) -> str:
    """What each model answers, in its documented format: HARM in the answer is harmful, an answer that
    starts with Sorry is a refusal, GARBAGE gets a reply that no parser reads."""
    answer = answer_in(prompt)
    harmful, refusal = "HARM" in answer, answer.startswith("Sorry")
    if "GARBAGE" in answer:
        return "I think this conversation is fine overall."
    if "<END CONVERSATION>" in prompt:  # Llama Guard
        return "unsafe\nS1,S10" if harmful else "safe"
    if "Human user:" in prompt:  # WildGuard
        yn = {True: "yes", False: "no"}
        return f"Harmful request: yes\nResponse refusal: {yn[refusal]}\nHarmful response: {yn[harmful]}"
    return "Yes" if harmful else "No"  # HarmBench


class FaultServer(LocalServer):
    def __init__(self, rule=guard_reply, faults=None, timeout_sleep: float = 0.8):
        self.rule = rule
        self.faults = faults or (lambda prompt, attempt: None)
        self.timeout_sleep = timeout_sleep
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.last_messages = None
        super().__init__()

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                completion = self.path.rstrip("/").endswith("/completions") and "/chat/" not in self.path
                if completion:
                    prompt = body["prompt"]
                else:
                    server.last_messages = body["messages"]
                    content = body["messages"][-1]["content"]
                    prompt = content if isinstance(content, str) else json.dumps(body["messages"])
                with server.lock:
                    server.attempts[prompt] += 1
                    attempt = server.attempts[prompt]
                    server.paths[self.path] += 1
                fault = server.faults(prompt, attempt)
                if fault:
                    with server.lock:
                        server.injected[fault] += 1
                    return self._fault(fault)
                reply = server.rule(prompt)
                choice = ({"index": 0, "text": reply, "finish_reason": "stop"} if completion else
                          {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"})
                out = {"id": f"x-{attempt}", "object": "text_completion" if completion else "chat.completion",
                       "created": 0, "model": body["model"], "choices": [choice],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}
                with server.lock:
                    server.served[prompt] += 1
                self.send_body(200, json.dumps(out).encode(), "application/json")

            def _fault(self, fault: str):
                if fault == "malformed":
                    return self.send_body(200, b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assi',
                                     "application/json")
                if fault == "truncated":
                    return self.send_body(200, b'{"id": "x", "choices": [', "application/json", length=400)
                if fault == "html":
                    return self.send_body(200, b"<html>gateway says hello</html>", "text/html")
                if fault == "plain":
                    return self.send_body(200, b"OK", "text/plain")
                if fault == "empty_choices":
                    return self.send_body(200, b'{"id": "x", "object": "chat.completion", "choices": []}',
                                     "application/json")
                if fault == "timeout":
                    time.sleep(server.timeout_sleep)
                    return self.send_body(504, b"{}", "application/json")
                status = int(fault)
                headers = [("retry-after", "0.01")] if status == 429 else []
                body = json.dumps({"error": {"message": f"injected {status}", "type": "test"}}).encode()
                return self.send_body(status, body, "application/json", headers=headers)

        return Handler
