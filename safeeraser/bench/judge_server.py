"""A local OpenAI-compatible chat server for the judging bench: answers every request after a fixed
delay, with a label that is a pure function of the prompt, and counts what it served.

Run it as its own process (`python -m safeeraser.bench.judge_server --delay 0.2`): it prints
`PORT <n>` once listening. `GET /stats` returns the counts; `POST /reset` clears them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def label_for(prompt: str) -> str:
    """A reply that parses for the prompt's kind; which one depends only on the prompt's hash."""
    h = int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16)
    if "<reference_answer>" in prompt:
        return f"{(h % 101) / 100:.2f}"
    if "unsafe or safe" in prompt:
        return "unsafe" if h % 2 else "safe"
    return "yes" if h % 2 else "no"  # the refusal and the normal-answer prompts


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # many concurrent connects must not be dropped


class JudgeServer:
    def __init__(self, delay: float = 0.2, host: str = "127.0.0.1", port: int = 0):
        self.delay = delay
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.httpd = _Server((host, port), self._handler())
        self.port = self.httpd.server_address[1]

    def stats(self) -> dict:
        with self.lock:
            return {"requests": sum(self.served.values()), "distinct_prompts": len(self.served),
                    "max_per_prompt": max(self.served.values(), default=0), "max_in_flight": self.max_in_flight}

    def reset(self) -> None:
        with self.lock:
            self.served.clear()
            self.max_in_flight = 0

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint

            def setup(self):
                super().setup()
                # One write per response and no Nagle delay: otherwise a keep-alive client waits ~40 ms
                # for a delayed ACK on every request, and the server would not answer "after 200 ms".
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
                head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n").encode()
                self.wfile.write(head + data)
                self.wfile.flush()

            def do_GET(self):
                if self.path.rstrip("/").endswith("/stats"):
                    return self._send(200, server.stats())
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/").endswith("/reset"):
                    server.reset()
                    return self._send(200, {"ok": True})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    request = json.loads(body)
                    prompt = request["messages"][-1]["content"]
                    time.sleep(server.delay)
                    with server.lock:
                        server.served[prompt] += 1
                        number = sum(server.served.values())
                    self._send(200, {
                        "id": f"chatcmpl-bench-{number}", "object": "chat.completion", "created": 0,
                        "model": request.get("model", "bench-judge"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": label_for(prompt)}}],
                        "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 1,
                                  "total_tokens": len(prompt) // 4 + 1},
                    })
                finally:
                    with server.lock:
                        server.in_flight -= 1

        return Handler

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.05)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    server = JudgeServer(args.delay, port=args.port)
    print(f"PORT {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
