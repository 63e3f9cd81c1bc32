"""The mock provider's Gemini API: `POST /v1beta/models/{model}:{method}`.

Methods: `generateContent`, `streamGenerateContent` (`?alt=sse` gives `data: {...}\\r\\n\\r\\n`
events, as Gemini sends them) and `batchEmbedContents`. Answers are deterministic and follow the
OpenAI route's rules (see docs/mock-provider.md); errors have Gemini's shape,
`{"error": {"code", "message", "status"}}`. The per-request `mock` control is honoured, with four
Gemini-only keys: `safety_block` (`"prompt"` or `true`: blocked prompt; `"candidate"`: answer cut
with finishReason SAFETY), `parallel_tool_calls`, `thoughts_tokens` and `cached_tokens`. The model
in the URL is the one `mock.fail_models` and the `requests_by_model` counter go by.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from aiohttp import web

from providers.mock.chat_plan import IMAGE_TOKENS, reply_words, split_evenly, split_words
from providers.mock.embeddings import embedding_vector
from providers.mock.errors import MockRequestError, retry_headers
from providers.mock.schema_example import example_from_schema
from providers.mock.settings import Behaviour, MockControl, apply_control, default_behaviour
from providers.mock.sse import SSEWriter
from providers.mock.stats import RecordedRequest

if TYPE_CHECKING:
    from providers.mock.app import MockProvider

GEMINI_PATH = "/v1beta/models/{call}"
PARALLEL_KEYWORD = "parallel"
"""A last user message containing this word gets two function calls when tools are given."""
MALFORMED_BODY = b'{"candidates": [{"content": {"parts": [{"te'
MALFORMED_EVENT = b'data: {"candidates": [{"content": {"parts": [{"text": "oo\r\n\r\n'
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_MAX_CANDIDATES = 8
_DISCONNECT_POLL_SECONDS = 0.05

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "The mock provider was asked to reject this request.",
    401: "API key not valid. Please pass a valid API key.",
    403: "The caller does not have permission.",
    404: "models/mock is not found for API version v1beta.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline exceeded.",
}
_RPC_STATUSES = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
_NATIVE_BY_CODE = {
    "context_length_exceeded": (
        "INVALID_ARGUMENT",
        "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
    ),
}
"""Gemini's status and message for the OpenAI codes a test may put in `error_code`."""
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class GeminiControl(msgspec.Struct, frozen=True):
    safety_block: Literal["prompt", "candidate"] | bool = False
    parallel_tool_calls: bool = False
    thoughts_tokens: int = 0
    cached_tokens: int = 0


_GEMINI_KEYS = frozenset(GeminiControl.__struct_fields__)


def gemini_error(
    status: int,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    rpc_status: str | None = None,
) -> web.Response:
    body = {
        "error": {
            "code": status,
            "message": message or _MESSAGES.get(status, f"Mock error {status}."),
            "status": rpc_status
            or STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "UNKNOWN"),
        }
    }
    return web.Response(
        status=status, body=_encode(body), content_type="application/json", headers=headers
    )


def injected_gemini_error(behaviour: Behaviour) -> web.Response:
    """The error a request with `mock.error` gets. `error_code` may be an OpenAI code with a
    Gemini equivalent (`context_length_exceeded`) or a status name (`FAILED_PRECONDITION`);
    `error_message` replaces the message."""
    assert behaviour.error is not None
    code = behaviour.error_code
    rpc_status: str | None = None
    message: str | None = None
    if code is not None and code in _NATIVE_BY_CODE:
        rpc_status, message = _NATIVE_BY_CODE[code]
    elif code is not None and code in _RPC_STATUSES:
        rpc_status = code
    return gemini_error(
        behaviour.error,
        behaviour.error_message or message,
        retry_headers(behaviour.retry_after),
        rpc_status=rpc_status,
    )


class FunctionCallPlan(msgspec.Struct, frozen=True):
    name: str
    args: Any


class GeminiPlan(msgspec.Struct):
    model: str
    candidates: int
    prompt_tokens: int
    pieces: list[str]
    finish_reason: str
    calls: list[FunctionCallPlan]
    control: GeminiControl

    @property
    def completion_tokens(self) -> int:
        return max(len(self.pieces), len(self.calls)) * self.candidates

    def usage(self, completion_tokens: int | None = None) -> dict[str, Any]:
        candidates = self.completion_tokens if completion_tokens is None else completion_tokens
        usage = {"promptTokenCount": self.prompt_tokens, "candidatesTokenCount": candidates}
        total = self.prompt_tokens + candidates + self.control.thoughts_tokens
        if self.control.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.control.thoughts_tokens
        if self.control.cached_tokens:
            usage["cachedContentTokenCount"] = self.control.cached_tokens
        usage["totalTokenCount"] = total
        return usage


class GeminiModels:
    """The `/v1beta/models/{model}:{method}` handler; shares settings, counters and the last
    request with the other routes of the same mock app."""

    def __init__(self, provider: MockProvider) -> None:
        self.provider = provider

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        provider = self.provider
        provider.stats.requests[f"/v1beta/models/{{model}}:{method}"] += 1
        if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return gemini_error(404, f"Method {method!r} is not found.")
        try:
            body = await self._read_body(request)
            provider.count_model(model)
            behaviour, control = self._behaviour(body)
            if method == "batchEmbedContents":
                answer = _embeddings_body(body, model, provider.settings.embedding_dimensions)
            else:
                plan = plan_generation(body, model, behaviour, control)
        except MockRequestError as error:
            return gemini_error(error.status, error.message)
        behaviour = provider.faults.resolve(behaviour, model)
        if behaviour.hang:
            return await self._hang(request)
        if behaviour.error is not None:
            await _sleep_ms(behaviour.latency_ms)
            return injected_gemini_error(behaviour)
        if method == "streamGenerateContent":
            return await GeminiStream(request, plan, behaviour, provider).run()
        try:
            await _sleep_ms(behaviour.latency_ms)
        except asyncio.CancelledError:
            provider.stats.requests_cancelled += 1
            raise
        if behaviour.malformed:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        if method == "generateContent":
            answer = _encode(response_document(plan, with_usage=not behaviour.no_usage))
        return web.Response(body=answer, content_type="application/json")

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        expected = self.provider.settings.require_api_key
        if expected is not None:
            given = request.headers.get("x-goog-api-key") or request.query.get("key", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise MockRequestError(_MESSAGES[401], status=401)
        try:
            body = _decode(await request.read())
        except msgspec.DecodeError:
            raise MockRequestError("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise MockRequestError("Invalid JSON payload received: the body must be an object.")
        self.provider.last_request = RecordedRequest(
            request.method, request.path, request.headers, body
        )
        return body

    def _behaviour(self, body: dict[str, Any]) -> tuple[Behaviour, GeminiControl]:
        settings = self.provider.settings
        control = body.get("mock")
        if control is None:
            return default_behaviour(settings), GeminiControl()
        if not isinstance(control, dict):
            raise MockRequestError("Invalid 'mock' control: expected an object")
        common = {k: v for k, v in control.items() if k not in _GEMINI_KEYS}
        own = {k: v for k, v in control.items() if k in _GEMINI_KEYS}
        try:
            parsed = msgspec.convert(common, MockControl)
            gemini = msgspec.convert(own, GeminiControl)
        except msgspec.ValidationError as error:
            raise MockRequestError(f"Invalid 'mock' control: {error}") from None
        return apply_control(default_behaviour(settings), parsed), gemini

    async def _hang(self, request: web.Request) -> web.Response:
        stats = self.provider.stats
        try:
            while not (request.transport is None or request.transport.is_closing()):  # noqa: ASYNC110
                await asyncio.sleep(_DISCONNECT_POLL_SECONDS)
        except asyncio.CancelledError:
            stats.requests_cancelled += 1
            raise
        stats.requests_cancelled += 1
        return web.Response(status=499)


# --- planning -------------------------------------------------------------------------------


def plan_generation(
    body: dict[str, Any], model: str, behaviour: Behaviour, control: GeminiControl
) -> GeminiPlan:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise MockRequestError("* GenerateContentRequest.contents: contents is not specified")
    prompt_tokens, last_user_text = _read_contents(contents, body.get("systemInstruction"))
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise MockRequestError("Invalid value at 'generation_config': expected an object")
    candidates = _int_field(config, "candidateCount", 1, maximum=_MAX_CANDIDATES)
    plan = GeminiPlan(model, candidates, prompt_tokens, [], "STOP", [], control)
    if control.safety_block in (True, "prompt"):
        return plan
    if behaviour.content is None:
        plan.calls = _function_calls(body, last_user_text, control)
        if plan.calls:
            return plan
    if behaviour.content is not None:
        plan.pieces = split_words(behaviour.content)
    else:
        words = reply_words(last_user_text, behaviour.word_count)
        text = " ".join(words)
        if config.get("responseMimeType") == "application/json":
            schema = config.get("responseSchema")
            value = example_from_schema(_lower_types(schema)) if schema else {"reply": text}
            plan.pieces = split_evenly(_encode(value).decode(), behaviour.word_count)
        else:
            plan.pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    limit = config.get("maxOutputTokens")
    if limit is not None:
        limit = _int_field(config, "maxOutputTokens", 1)
        if len(plan.pieces) > limit:
            plan.pieces = plan.pieces[:limit]
            plan.finish_reason = "MAX_TOKENS"
    if control.safety_block == "candidate":
        plan.finish_reason = "SAFETY"
    return plan


def _read_contents(contents: list[Any], system: Any) -> tuple[int, str]:
    characters = 0
    images = 0
    last_user_text = ""
    everything = [*contents, system] if isinstance(system, dict) else contents
    for index, content in enumerate(everything):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise MockRequestError(f"* contents[{index}].parts: must be an array")
        texts = []
        for part in parts:
            if not isinstance(part, dict):
                raise MockRequestError(f"* contents[{index}].parts: each part must be an object")
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif "inlineData" in part or "fileData" in part:
                images += 1
            elif "functionCall" in part or "functionResponse" in part:
                characters += len(_encode(part))
        text = " ".join(texts)
        characters += len(text)
        if content is not system and content.get("role", "user") == "user" and texts:
            last_user_text = text
    return max(1, math.ceil(characters / 4) + images * IMAGE_TOKENS), last_user_text


def _function_calls(
    body: dict[str, Any], last_user_text: str, control: GeminiControl
) -> list[FunctionCallPlan]:
    declarations: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            declarations += [d for d in tool.get("functionDeclarations") or [] if _named(d)]
    if not declarations:
        return []
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if calling.get("mode") == "NONE":
        return []
    allowed = calling.get("allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d["name"] in allowed]
        if not declarations:
            raise MockRequestError("allowedFunctionNames names no declared function")
    chosen = declarations[:1]
    if control.parallel_tool_calls or PARALLEL_KEYWORD in last_user_text.lower():
        chosen = (declarations * 2)[:2]
    return [
        FunctionCallPlan(d["name"], example_from_schema(_lower_types(d.get("parameters", {}))))
        for d in chosen
    ]


def _named(declaration: Any) -> bool:
    return isinstance(declaration, dict) and isinstance(declaration.get("name"), str)


def _lower_types(schema: Any) -> Any:
    """Gemini's schemas may spell types in capitals (`OBJECT`); JSON Schema uses lower case."""
    if isinstance(schema, dict):
        return {
            key: value.lower() if key == "type" and isinstance(value, str) else _lower_types(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    return schema


def _int_field(config: dict[str, Any], name: str, default: int, maximum: int = 1 << 30) -> int:
    value = config.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise MockRequestError(f"Invalid value at 'generation_config.{name}'")
    return value


# --- answers --------------------------------------------------------------------------------


def _parts(plan: GeminiPlan, text: str) -> list[dict[str, Any]]:
    if plan.calls:
        return [{"functionCall": {"name": c.name, "args": c.args}} for c in plan.calls]
    return [{"text": text}]


def _candidate(
    plan: GeminiPlan, index: int, parts: list[dict[str, Any]], finish: str | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": index}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
        if finish == "SAFETY":
            candidate["safetyRatings"] = _SAFETY_RATINGS
    return candidate


def response_document(plan: GeminiPlan, *, with_usage: bool) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if plan.control.safety_block in (True, "prompt"):
        document["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
    else:
        parts = [] if plan.finish_reason == "SAFETY" else _parts(plan, "".join(plan.pieces))
        document["candidates"] = [
            _candidate(plan, index, parts, plan.finish_reason) for index in range(plan.candidates)
        ]
    if with_usage:
        document["usageMetadata"] = plan.usage()
    document["modelVersion"] = plan.model
    document["responseId"] = f"mock{time.monotonic_ns():x}"
    return document


class GeminiStream(SSEWriter):
    """Writes one answer as Gemini's SSE events: each a whole `GenerateContentResponse` holding
    the next piece of text, the last one with finishReason and the final usageMetadata."""

    def __init__(
        self, request: web.Request, plan: GeminiPlan, behaviour: Behaviour, provider: MockProvider
    ) -> None:
        self.request = request
        self.plan = plan
        self.behaviour = behaviour
        self.stats = provider.stats
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._pending: list[bytes] = []
        self._sent_tokens = 0

    async def _write_events(self) -> bool:
        plan, behaviour = self.plan, self.behaviour
        await _sleep_ms(behaviour.latency_ms)
        await self.response.prepare(self.request)
        if plan.control.safety_block in (True, "prompt") or plan.calls:
            await _sleep_ms(behaviour.ttft_ms)
            self._queue(response_document(plan, with_usage=not behaviour.no_usage))
            await self._flush()
            return False
        size = behaviour.tokens_per_chunk
        pieces = plan.pieces
        groups = ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)] or [""]
        drop_after = behaviour.drop_after_chunks
        await self._pause(behaviour.ttft_ms)
        if behaviour.malformed:
            self._queue(self._event(groups[0], last=False))
            self._pending.append(MALFORMED_EVENT)
            await self._flush()
            return False
        for sent, group in enumerate(groups):
            if drop_after is not None and sent >= drop_after:
                await self._drop_connection()
                return True
            if sent:
                await self._pause(behaviour.chunk_interval_ms)
            self._sent_tokens += min(size, len(pieces) - sent * size)
            last = sent == len(groups) - 1 and drop_after is None
            self._queue(self._event(group, last))
        if drop_after is not None:
            await self._drop_connection()
            return True
        await self._flush()
        return False

    def _event(self, text: str, last: bool) -> dict[str, Any]:
        plan = self.plan
        finish = plan.finish_reason if last else None
        parts = [] if finish == "SAFETY" else [{"text": text}]
        event: dict[str, Any] = {
            "candidates": [_candidate(plan, i, parts, finish) for i in range(plan.candidates)]
        }
        if not self.behaviour.no_usage:
            event["usageMetadata"] = plan.usage(self._sent_tokens * plan.candidates)
        event["modelVersion"] = plan.model
        return event

    def _queue(self, document: dict[str, Any]) -> None:
        self._pending.append(b"data: " + _encode(document) + b"\r\n\r\n")


def _embeddings_body(body: dict[str, Any], model: str, default_dimensions: int) -> bytes:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise MockRequestError("* BatchEmbedContentsRequest.requests: must not be empty")
    embeddings = []
    for index, item in enumerate(requests):
        where = f"* BatchEmbedContentsRequest.requests[{index}]"
        if not isinstance(item, dict) or item.get("model") != f"models/{model}":
            raise MockRequestError(f"{where}.model: must be 'models/{model}'")
        parts = (item.get("content") or {}).get("parts")
        if not isinstance(parts, list) or not parts:
            raise MockRequestError(f"{where}.content: must have parts")
        text = " ".join(p["text"] for p in parts if isinstance(p, dict) and "text" in p)
        dimensions = item.get("outputDimensionality", default_dimensions)
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 8192:
            raise MockRequestError(f"{where}.output_dimensionality: out of range")
        embeddings.append({"values": embedding_vector(text, dimensions).tolist()})
    return _encode({"embeddings": embeddings})


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000.0)
