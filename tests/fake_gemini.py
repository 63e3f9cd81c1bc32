"""A fake of Gemini's `POST /v1beta/models/{model}:generateContent` REST API for judge tests.

It answers what the real API answers for a JSON-output request: a candidate whose one text
part is the JSON, with usage metadata. A test scripts the next answers in order (`then_*`);
once the script is used up, every answer scores each criterion of the request's schema with
`default_score`. It runs its own event loop in a thread (`tests.threaded_server`), on
127.0.0.1, and keeps every request it got (path, API key header, body) for assertions.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from tests.threaded_server import ThreadedServer

PROMPT_TOKENS = 120
COMPLETION_TOKENS = 40


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    api_key: str | None
    body: dict[str, Any]

    @property
    def schema_properties(self) -> list[str]:
        config = self.body.get("generationConfig", {})
        schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
        return list(schema.get("properties", {}).get("scores", {}).get("properties", {}))


class FakeGemini(ThreadedServer):
    def __init__(self, *, api_key: str | None = None, default_score: int = 80) -> None:
        super().__init__()
        self.api_key = api_key
        self.default_score = default_score
        self.received: list[Received] = []
        self._script: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """What a `gemini` provider's `base_url` is set to."""
        return f"{self.url}/v1beta"

    # -- scripting ------------------------------------------------------------------------

    def _push(self, kind: str, value: Any = None, times: int = 1) -> FakeGemini:
        with self._lock:
            self._script.extend((kind, value) for _ in range(times))
        return self

    def then_scores(self, scores: dict[str, Any], *, flags: list[str] | None = None) -> FakeGemini:
        document = {"scores": scores, "rationale": "scripted", "flags": flags or []}
        return self._push("text", msgspec.json.encode(document).decode())

    def then_text(self, text: str, times: int = 1) -> FakeGemini:
        """A text part as it is: not JSON, or JSON of the wrong shape."""
        return self._push("text", text, times)

    def then_refusal(self, times: int = 1) -> FakeGemini:
        """A candidate stopped for safety, with no text."""
        return self._push("refusal", None, times)

    def then_status(self, status: int, times: int = 1) -> FakeGemini:
        return self._push("status", status, times)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.received.clear()

    # -- serving --------------------------------------------------------------------------

    def route(self, app: web.Application) -> None:
        app.router.add_post("/{version}/models/{model_action}", self._generate)

    async def _generate(self, request: web.Request) -> web.Response:
        model, _, action = request.match_info["model_action"].partition(":")
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return _error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        received = Received(request.path, request.headers.get("x-goog-api-key"), body)
        with self._lock:
            self.received.append(received)
            step = self._script.popleft() if self._script else None
        if action != "generateContent":
            return _error(404, f"Method {action} not found.", "NOT_FOUND")
        if self.api_key is not None and received.api_key != self.api_key:
            return _error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
            )
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return _error(
                400,
                "* GenerateContentRequest.contents: contents is not specified",
                "INVALID_ARGUMENT",
            )
        if step is None:
            scores = dict.fromkeys(received.schema_properties, self.default_score)
            document = {"scores": scores, "rationale": "default", "flags": []}
            step = ("text", msgspec.json.encode(document).decode())
        kind, value = step
        if kind == "status":
            return _error(value, "The model is overloaded. Please try again later.", "UNAVAILABLE")
        usage = {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": 0 if kind == "refusal" else COMPLETION_TOKENS,
            "totalTokenCount": PROMPT_TOKENS + (0 if kind == "refusal" else COMPLETION_TOKENS),
        }
        if kind == "refusal":
            candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0}
        else:
            candidate = {
                "content": {"role": "model", "parts": [{"text": value}]},
                "finishReason": "STOP",
                "index": 0,
            }
        return web.json_response(
            {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
        )


def _error(status: int, message: str, state: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "status": state}}, status=status
    )
