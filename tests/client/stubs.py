"""A misbehaving front for the real service: a loopback HTTP server that answers the first requests
with a scripted failure (a status, or a connection closed without an answer) and forwards the rest to
the service, counting every request it sees."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

__all__ = ["Front", "front"]

#: Hop-by-hop and framing headers that are not passed on.
_SKIPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Front:
    """``script`` is consumed one entry per request: a status to answer with, or "drop" to close the
    connection unanswered; when it is empty, requests are forwarded to ``upstream``."""

    upstream: str
    script: list[int | str]
    retry_after: str | None = "0"
    seen: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> int | str | None:
        with self.lock:
            self.seen += 1
            return self.script.pop(0) if self.script else None


def _handler(state: Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            action = state.next_action()
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if isinstance(action, int):
                problem = {
                    "type": "/problems/unavailable",
                    "title": "Service Unavailable",
                    "status": action,
                    "detail": f"scripted {action}",
                    "request_id": f"front-{state.seen}",
                }
                payload = json.dumps(problem).encode()
                self.send_response(action)
                self.send_header("content-type", "application/problem+json")
                self.send_header("content-length", str(len(payload)))
                if state.retry_after is not None:
                    self.send_header("retry-after", state.retry_after)
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIPPED}
            answer = httpx.post(state.upstream + self.path, content=body, headers=headers, timeout=60)
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in _SKIPPED:
                    self.send_header(name, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

    return Handler


@contextmanager
def front(upstream: str, script: list[int | str], retry_after: str | None = "0") -> Iterator[Front]:
    state = Front(upstream, list(script), retry_after)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
