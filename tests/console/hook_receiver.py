"""A webhook receiver for the browser tests: a real HTTP server on 127.0.0.1 in a thread of its
own (the browser tests' thread runs Playwright's loop), which checks each request's signature
as a receiver should and records what it was sent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from telemetry.alerts.signing import verify
from tests.ports import free_port


@dataclass
class HookReceiver:
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/steerway"

    def start(self) -> HookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = verify(
                    receiver.secret,
                    self.headers.get("X-Steerway-Timestamp", ""),
                    body,
                    self.headers.get("X-Steerway-Signature", ""),
                )
                if signed:
                    receiver.received.append(msgspec.json.decode(body))
                else:
                    receiver.refused += 1
                self.send_response(200 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, event: str, *, test: bool = False, seconds: float = 30) -> dict[str, Any]:
        """The first signed notification of `event` (`alert.firing`, `alert.resolved`)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for body in self.received:
                if body["event"] == event and body["test"] is test:
                    return body
            time.sleep(0.1)
        raise AssertionError(f"no {event} notification within {seconds} s: {self.received}")
