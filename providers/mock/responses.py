"""The mock provider's OpenAI Responses API: `POST /v1/responses`, whole or as typed events.

The reply follows the chat route's rules (`Echo: <last user text>` cut to `chunks *
tokens_per_chunk` words, one word one output token, `mock.content` instead when given);
`max_output_tokens` cuts it and makes the response `incomplete`; `tool_choice: "required"`
(or naming a function) answers one `function_call` built from the tool's schema; a request
with `reasoning` gets a `reasoning` item first. Input tokens are the body's input and
instructions over four characters. Nothing is stored: `store` and `previous_response_id` are
echoed only. Errors and faults follow the same `mock` control as the chat route (OpenAI's
error shape); `drop_after_chunks` with `error` ends the stream with an `error` event.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from providers.mock.chat_plan import reply_words, split_evenly, split_words
from providers.mock.chat_responses import SSE_HEADERS, new_id
from providers.mock.errors import MockRequestError
from providers.mock.schema_example import example_from_schema
from providers.mock.settings import Behaviour
from providers.mock.sse import SSEWriter

if TYPE_CHECKING:
    from providers.mock.app import MockProvider

RESPONSES_PATH = "/v1/responses"
REASONING_SUMMARY = "Thinking about the request."

_encode = msgspec.json.Encoder().encode


class ResponsesPlan(msgspec.Struct):
    model: str
    stream: bool
    input_tokens: int
    pieces: list[str]
    incomplete: bool
    reasoning: bool
    tool_name: str | None
    echo: dict[str, Any]

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + (len(split_words(REASONING_SUMMARY)) if self.reasoning else 0)


class MockResponses:
    """The `/v1/responses` handler, sharing settings, counters and faults with the chat route."""

    def __init__(self, provider: MockProvider) -> None:
        self.provider = provider

    async def handle(self, request: web.Request) -> web.StreamResponse:
        provider = self.provider
        provider.stats.requests[RESPONSES_PATH] += 1
        try:
            body = await provider._read_body(request)
            provider.count_model(body.get("model"))
            behaviour = provider._behaviour(body)
            plan = plan_response(body, behaviour)
        except MockRequestError as error:
            return error.to_response()
        behaviour = provider.faults.resolve(behaviour, plan.model)
        if behaviour.hang:
            return await provider._hang(request)
        mid_stream_error = plan.stream and behaviour.drop_after_chunks is not None
        if behaviour.error is not None and not mid_stream_error:
            return await provider._injected_error(behaviour)
        if plan.stream:
            return await ResponsesStream(request, plan, behaviour, provider).run()
        document = response_document(plan, new_id("resp_"), _output(plan), "completed")
        return web.Response(body=_encode(document), content_type="application/json")


def plan_response(body: dict[str, Any], behaviour: Behaviour) -> ResponsesPlan:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise MockRequestError("Missing required parameter: 'model'.", param="model")
    given = body.get("input")
    if not isinstance(given, str | list) or not given:
        raise MockRequestError("Missing required parameter: 'input'.", param="input")
    stream = body.get("stream") is True
    characters = len(_encode(given)) + len(str(body.get("instructions") or ""))
    tool_name = _tool_name(body)
    if tool_name is not None and behaviour.content is None:
        arguments = _arguments(body, tool_name)
        pieces = split_evenly(arguments, behaviour.word_count)
        incomplete = False
    else:
        tool_name = None
        if behaviour.content is not None:
            pieces = split_words(behaviour.content)
        else:
            words = reply_words(_last_user_text(given), behaviour.word_count)
            pieces = [word if index == 0 else " " + word for index, word in enumerate(words)]
        limit = body.get("max_output_tokens")
        incomplete = False
        if isinstance(limit, int) and not isinstance(limit, bool) and len(pieces) > limit:
            incomplete = True
            pieces = pieces[: max(limit, 0)]
    echo = {
        name: body.get(name)
        for name in ("instructions", "previous_response_id", "temperature", "top_p")
    }
    echo["store"] = body.get("store", True)
    return ResponsesPlan(
        model=model,
        stream=stream,
        input_tokens=max(1, math.ceil(characters / 4)),
        pieces=pieces,
        incomplete=incomplete,
        reasoning=isinstance(body.get("reasoning"), dict),
        tool_name=tool_name,
        echo=echo,
    )


def response_document(
    plan: ResponsesPlan, response_id: str, output: list[dict[str, Any]], status: str
) -> dict[str, Any]:
    finished = status != "in_progress"
    document: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        **plan.echo,
        "usage": _usage(plan) if finished else None,
    }
    return document


def _output(plan: ResponsesPlan) -> list[dict[str, Any]]:
    items = [_reasoning_item()] if plan.reasoning else []
    text = "".join(plan.pieces)
    if plan.tool_name is not None:
        items.append(_function_item(new_id("fc_"), new_id("call_"), plan.tool_name, text))
    else:
        items.append(_message_item(new_id("msg_"), text, "completed"))
    return items


def _usage(plan: ResponsesPlan) -> dict[str, Any]:
    reasoning = len(split_words(REASONING_SUMMARY)) if plan.reasoning else 0
    return {
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }


def _reasoning_item() -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": new_id("rs_"),
        "summary": [{"type": "summary_text", "text": REASONING_SUMMARY}],
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _function_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


class ResponsesStream(SSEWriter):
    """Writes one response as the Responses API's typed events, each with its sequence number."""

    def __init__(
        self, request: web.Request, plan: ResponsesPlan, behaviour: Behaviour, provider: Any
    ) -> None:
        self.request = request
        self.plan = plan
        self.behaviour = behaviour
        self.stats = provider.stats
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._pending: list[bytes] = []
        self._sequence = 0
        self._id = new_id("resp_")

    async def _write_events(self) -> bool:
        behaviour = self.behaviour
        plan = self.plan
        if behaviour.latency_ms > 0:
            await self._pause(behaviour.latency_ms)
        await self.response.prepare(self.request)
        opened = response_document(plan, self._id, [], "in_progress")
        self._event("response.created", {"response": opened})
        self._event("response.in_progress", {"response": opened})
        output: list[dict[str, Any]] = []
        if plan.reasoning:
            item = _reasoning_item()
            self._event("response.output_item.added", {"output_index": 0, "item": item})
            self._event("response.output_item.done", {"output_index": 0, "item": item})
            output.append(item)
        await self._pause(behaviour.ttft_ms)
        index = len(output)
        text_item = plan.tool_name is None
        item_id = new_id("msg_" if text_item else "fc_")
        call_id = new_id("call_")
        opening = (
            _message_item(item_id, "", "in_progress")
            if text_item
            else _function_item(item_id, call_id, plan.tool_name or "", "")
        )
        if text_item:
            opening["content"] = []
        self._event("response.output_item.added", {"output_index": index, "item": opening})
        place = {"item_id": item_id, "output_index": index}
        if text_item:
            part = {"type": "output_text", "text": "", "annotations": []}
            self._event("response.content_part.added", {**place, "content_index": 0, "part": part})
        size = behaviour.tokens_per_chunk
        pieces = plan.pieces
        groups = ["".join(pieces[start : start + size]) for start in range(0, len(pieces), size)]
        drop_after = behaviour.drop_after_chunks
        for sent, group in enumerate(groups):
            if drop_after is not None and sent >= drop_after:
                return await self._cut()
            if sent:
                await self._pause(behaviour.chunk_interval_ms)
            if text_item:
                delta = {**place, "content_index": 0, "delta": group}
                self._event("response.output_text.delta", delta)
            else:
                self._event("response.function_call_arguments.delta", {**place, "delta": group})
        if drop_after is not None:
            return await self._cut()
        text = "".join(pieces)
        if text_item:
            done_part = {"type": "output_text", "text": text, "annotations": []}
            self._event("response.output_text.done", {**place, "content_index": 0, "text": text})
            self._event(
                "response.content_part.done", {**place, "content_index": 0, "part": done_part}
            )
            item = _message_item(item_id, text, "completed")
        else:
            self._event("response.function_call_arguments.done", {**place, "arguments": text})
            item = _function_item(item_id, call_id, plan.tool_name or "", text)
        self._event("response.output_item.done", {"output_index": index, "item": item})
        output.append(item)
        status = "incomplete" if plan.incomplete else "completed"
        final = response_document(plan, self._id, output, status)
        self._event(f"response.{status}", {"response": final})
        await self._flush()
        return False

    async def _cut(self) -> bool:
        if self.behaviour.error is not None:
            message = self.behaviour.error_message or "The mock provider failed mid-stream."
            fields = {"code": self.behaviour.error_code or "server_error", "message": message}
            self._event("error", {**fields, "param": None})
            await self._flush()
            return True
        await self._drop_connection()
        return True

    def _event(self, kind: str, fields: dict[str, Any]) -> None:
        data = _encode({"type": kind, **fields, "sequence_number": self._sequence})
        self._sequence += 1
        self._pending.append(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")


def _last_user_text(given: str | list[Any]) -> str:
    if isinstance(given, str):
        return given
    text = ""
    for item in given:
        if not isinstance(item, dict) or item.get("role", "user") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            parts = [
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") in ("input_text", "text")
            ]
            text = " ".join(parts) or text
    return text


def _tool_name(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return None
    names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("name") in names:
        return str(choice["name"])
    if choice == "required" and names:
        return names[0]
    return None


def _arguments(body: dict[str, Any], name: str) -> str:
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("name") == name:
            return _encode(example_from_schema(tool.get("parameters") or {})).decode()
    return "{}"
