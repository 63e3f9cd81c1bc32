"""A streamed chat completion as the Responses API's typed events.

Chat chunks come in one at a time; out go `response.created` and `response.in_progress`, then
for the text an `output_item.added` (a message), a `content_part.added`, one
`output_text.delta` per piece and, at the end, `output_text.done`, `content_part.done` and
`output_item.done`; for each tool call an `output_item.added` (a function call), its
`function_call_arguments.delta`s, then `function_call_arguments.done` and `output_item.done`;
last `response.completed` (or `response.incomplete`) with the whole response. Every event
carries the next `sequence_number`.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.inbound.responses_answer import (
    function_call_item,
    message_item,
    output_text_part,
    response_object,
    status_of,
    usage_object,
)

_encode = msgspec.json.encode


class _Call:
    __slots__ = ("arguments", "item", "output_index")

    def __init__(self, item: dict[str, Any], output_index: int) -> None:
        self.item = item
        self.output_index = output_index
        self.arguments: list[str] = []


class ResponsesStream:
    """Turns one chat stream into one Responses event stream."""

    def __init__(self, response_id: str, model: str, echo: dict[str, Any]) -> None:
        self.response_id = response_id
        self.model = model
        self.echo = echo
        self.created_at = int(time.time())
        self._sequence = 0
        self._message: dict[str, Any] | None = None
        self._message_index = -1
        self._texts: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._next_output = 0
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        """The finished response object, once `close()` has made it."""

    def open(self) -> bytes:
        started = self._snapshot("in_progress", [])
        return self._event("response.created", response=started) + self._event(
            "response.in_progress", response=started
        )

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events for one chat chunk (often none)."""
        out: list[bytes] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage_object(usage)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # a Responses answer is one choice
            delta = choice.get("delta")
            if isinstance(delta, dict):
                text = delta.get("content")
                if isinstance(text, str) and text:
                    out.append(self._text(text))
                calls = delta.get("tool_calls")
                for call in calls if isinstance(calls, list) else ():
                    if isinstance(call, dict):
                        out.append(self._call(call))
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self._finish_reason = reason
        return b"".join(out)

    def close(self) -> bytes:
        """The closing events and the final `response.completed` / `response.incomplete`."""
        status, incomplete = status_of(self._finish_reason)
        out: list[bytes] = []
        output: list[tuple[int, dict[str, Any]]] = []
        if self._message is not None:
            text = "".join(self._texts)
            part = output_text_part(text)
            item = {**self._message, "status": status, "content": [part]}
            where = {"item_id": item["id"], "output_index": self._message_index}
            out.append(
                self._event(
                    "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
                )
            )
            out.append(
                self._event("response.content_part.done", **where, content_index=0, part=part)
            )
            out.append(
                self._event(
                    "response.output_item.done", output_index=self._message_index, item=item
                )
            )
            output.append((self._message_index, item))
        for call in self._calls.values():
            arguments = "".join(call.arguments)
            item = {**call.item, "status": "completed", "arguments": arguments}
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=call.output_index,
                    arguments=arguments,
                )
            )
            out.append(
                self._event("response.output_item.done", output_index=call.output_index, item=item)
            )
            output.append((call.output_index, item))
        final = response_object(
            self.response_id,
            self.model,
            self.echo,
            output=[item for _, item in sorted(output, key=lambda pair: pair[0])],
            status=status,
            incomplete_details=incomplete,
            usage=self._usage,
            created_at=self.created_at,
        )
        self.final = final
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, response=final))
        return b"".join(out)

    def error(self, code: str | None, message: str, param: str | None = None) -> bytes:
        """The `error` event that ends a stream the gateway could not finish."""
        return self._event("error", code=code, message=message, param=param)

    # --- pieces ---------------------------------------------------------------------------------

    def _text(self, text: str) -> bytes:
        opened = b""
        if self._message is None:
            self._message = message_item(None, None, "in_progress")
            self._message_index = self._claim_output()
            where = {"item_id": self._message["id"], "output_index": self._message_index}
            opened = self._event(
                "response.output_item.added", output_index=self._message_index, item=self._message
            ) + self._event(
                "response.content_part.added", **where, content_index=0, part=output_text_part("")
            )
        self._texts.append(text)
        return opened + self._event(
            "response.output_text.delta",
            item_id=self._message["id"],
            output_index=self._message_index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call(self, delta: dict[str, Any]) -> bytes:
        index = delta.get("index", 0)
        index = index if isinstance(index, int) else 0
        function = delta.get("function")
        function = function if isinstance(function, dict) else {}
        opened = b""
        call = self._calls.get(index)
        if call is None:
            item = function_call_item(
                str(delta.get("id") or ""), str(function.get("name") or ""), "", "in_progress"
            )
            call = _Call(item, self._claim_output())
            self._calls[index] = call
            opened = self._event(
                "response.output_item.added", output_index=call.output_index, item=item
            )
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return opened
        call.arguments.append(arguments)
        return opened + self._event(
            "response.function_call_arguments.delta",
            item_id=call.item["id"],
            output_index=call.output_index,
            delta=arguments,
        )

    def _claim_output(self) -> int:
        index = self._next_output
        self._next_output += 1
        return index

    def _snapshot(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return response_object(
            self.response_id,
            self.model,
            self.echo,
            output=output,
            status=status,
            created_at=self.created_at,
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        number = self._sequence
        self._sequence += 1
        data = _encode({"type": kind, "sequence_number": number, **fields})
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
