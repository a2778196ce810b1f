"""The scaffolding the eval tests' OpenAI-compatible servers share: a threaded HTTP server on
127.0.0.1 at a random port, started and stopped around a test, and a reply writer that ignores a
client that has already hung up (the timeout faults make clients do that)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections when 32 requests start at once


class LocalServer:
    """Subclasses give `_handler()` (a BaseHTTPRequestHandler class); `url` is the /v1 base URL."""

    def __init__(self):
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_body(self, status: int, body: bytes, content_type: str = "application/json", headers=(),
                  length: int | None = None) -> None:
        """`length`: a Content-Length other than the body's (a truncated reply)."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
