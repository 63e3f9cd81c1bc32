"""`/metrics`: who may read it, and the separate listener that serves it when configured.

The listener answers one `GET /metrics` per connection and closes it. It is small on purpose:
a request's headers must arrive within `HEADER_TIMEOUT` seconds and `MAX_HEADER_BYTES`, at most
`MAX_CONNECTIONS` are open at once, and nothing but `/metrics` is served, so a slow or hostile
peer on the metrics port can neither hold sockets for ever nor reach the API.

With several workers (`steerway serve --workers N`) every worker binds the same address with
`SO_REUSEPORT`: the kernel hands each scrape to one of them, and each answers with the sum
across workers (Prometheus' multiprocess mode), so the port behaves as one listener.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Final

import httptools

from gateway.errors import error_body
from telemetry import metrics

logger = logging.getLogger("steerway.metrics")

HEADER_TIMEOUT: Final = 5.0
WRITE_TIMEOUT: Final = 10.0
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_CONNECTIONS: Final = 32
PATH: Final = "/metrics"

_JSON = "application/json"


class Answer:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


class MetricsEndpoint:
    """The exposition text, behind a bearer token when one is configured.

    The token is compared as a SHA-256 digest with `hmac.compare_digest`, so the time an answer
    takes does not tell how much of a guess was right; it is never logged or echoed.
    """

    def __init__(self, token: str | None, refresh: Callable[[], None]) -> None:
        self._digest = hashlib.sha256(token.encode()).digest() if token else None
        self._refresh = refresh

    def allows(self, authorization: str | None) -> bool:
        if self._digest is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            given = ""
        digest = hashlib.sha256(given.strip().encode("utf-8", "replace")).digest()
        return hmac.compare_digest(digest, self._digest)

    def answer(self, authorization: str | None) -> Answer:
        if not self.allows(authorization):
            return Answer(
                401,
                error_body(
                    "Reading /metrics needs the metrics bearer token: "
                    "'Authorization: Bearer <token>'.",
                    "invalid_request_error",
                    "invalid_metrics_token",
                ),
                _JSON,
                {"www-authenticate": 'Bearer realm="metrics"'},
            )
        self._refresh()
        body, content_type = metrics.render()
        return Answer(200, body, content_type)


class MetricsListener:
    """A socket of its own that serves only `/metrics`."""

    def __init__(
        self, endpoint: MetricsEndpoint, host: str, port: int, *, reuse_port: bool = False
    ) -> None:
        self._endpoint = endpoint
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve,
                host=self._host,
                port=self._port,
                reuse_port=self._reuse_port,
                limit=MAX_HEADER_BYTES,
            )
        except OSError as error:
            raise RuntimeError(
                f"metrics.listen {self._host}:{self._port}: cannot listen ({error.strerror})"
            ) from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._connections:
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._connections.add(writer)
        try:
            async with asyncio.timeout(HEADER_TIMEOUT):
                request = await _read_head(reader)
            if request is None:
                return
            answer = self._route(*request)
            writer.write(_encode(answer, head_only=request[0] == "HEAD"))
            async with asyncio.timeout(WRITE_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()
        except Exception:
            logger.exception("could not answer a metrics scrape")
            writer.transport.abort()
        finally:
            self._connections.discard(writer)
            writer.close()

    def _route(self, method: str, path: str, authorization: str | None) -> Answer:
        if path != PATH:
            message = "Only /metrics is served on this port."
            return Answer(404, error_body(message, "invalid_request_error", "unknown_url"), _JSON)
        if method not in ("GET", "HEAD"):
            return Answer(
                405,
                error_body(
                    "Method not allowed on /metrics.", "invalid_request_error", "method_not_allowed"
                ),
                _JSON,
                {"allow": "GET, HEAD"},
            )
        return self._endpoint.answer(authorization)


class _Head:
    """Collects what `httptools` parses of a request's head."""

    def __init__(self) -> None:
        self.url = b""
        self.authorization: bytes | None = None
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.authorization = value

    def on_headers_complete(self) -> None:
        self.complete = True


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, str | None] | None:
    """(method, path, authorization) of the first request on the connection; None when the
    peer sent something that is not an HTTP request or more head than allowed."""
    head = _Head()
    parser = httptools.HttpRequestParser(head)
    received = 0
    while not head.complete:
        chunk = await reader.read(4096)
        if not chunk:
            return None
        received += len(chunk)
        if received > MAX_HEADER_BYTES:
            return None
        try:
            parser.feed_data(chunk)
        except httptools.HttpParserUpgrade:
            break
        except httptools.HttpParserError:
            return None
    if not head.complete:
        return None
    try:
        path = (httptools.parse_url(head.url).path or b"").decode("latin-1")
    except httptools.HttpParserError:
        return None
    method = parser.get_method().decode("latin-1")
    authorization = head.authorization.decode("latin-1") if head.authorization else None
    return method, path, authorization


def _encode(answer: Answer, *, head_only: bool) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
    lines = [
        f"HTTP/1.1 {answer.status} {reason.get(answer.status, 'Error')}",
        f"content-type: {answer.content_type}",
        f"content-length: {len(answer.body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in answer.headers.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + answer.body
