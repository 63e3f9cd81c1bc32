"""An upstream that fails every call with a message quoting every header it received and the
URL it was called at: the worst a provider can do with the credentials a gateway sends it.

It speaks just enough of each wire format for its errors to be read as errors: an OpenAI-shaped
error body (with the status of the request's `mock.error`, default 400); Gemini's error body on
Gemini paths; and, for streamed calls, an Anthropic `error` event or a Gemini error object after
a 200. It runs its own event loop in a thread, for synchronous and async tests alike.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from tests.threaded_server import ThreadedServer

HEADERS_NOT_ECHOED = frozenset({"content-length", "content-type", "host"})


class EchoUpstream(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def route(self, app: web.Application) -> None:
        app.router.add_route("POST", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body: dict[str, Any] = msgspec.json.decode(await request.read() or b"{}")
        echoed = "; ".join(
            f"{name}: {value}"
            for name, value in request.headers.items()
            if name.lower() not in HEADERS_NOT_ECHOED
        )
        message = f"rejected. You sent {echoed} to {request.url}"
        gemini = ":generateContent" in request.path or ":streamGenerateContent" in request.path
        gemini = gemini or ":batchEmbedContents" in request.path
        if request.path.endswith(":streamGenerateContent"):
            error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
            return await _sse(request, [b"data: " + msgspec.json.encode({"error": error})])
        if request.path.endswith("/messages") and body.get("stream"):
            event = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": message},
            }
            return await _sse(request, [b"event: error\ndata: " + msgspec.json.encode(event)])
        status = int(body.get("mock", {}).get("error", 400))
        if gemini:
            error = {"code": status, "message": message, "status": "INVALID_ARGUMENT"}
        else:
            error = {"message": message, "type": "invalid_request_error", "param": None}
        return web.json_response({"error": error}, status=status)


async def _sse(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event + b"\n\n")
    await response.write_eof()
    return response
