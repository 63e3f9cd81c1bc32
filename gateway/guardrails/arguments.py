"""Tool-call arguments as texts the guardrails can read and rewrite.

A tool call's `arguments` is JSON inside a string. Checking that string as plain text would let a
mask land on a number or across a quote and break the JSON, and an unmasked value holding a quote
would break it too. So each string inside the arguments is a text of its own, and the arguments
are encoded again only when one of them changed. Arguments that are not JSON (a model can produce
that), or nest too deep to decode, are one plain text. Object keys and numbers are not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, MutableSequence
from typing import Any

import msgspec

Place = tuple[MutableMapping[str, Any] | MutableSequence[Any], Any]
"""Where a text lives: `container[key]` is a string."""


class ToolArguments:
    """The texts of one tool call's arguments, in place in its `function` object."""

    __slots__ = ("_before", "_function", "_holder", "places")

    def __init__(self, function: MutableMapping[str, Any]) -> None:
        self._function = function
        raw = function["arguments"]
        try:
            value = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # nested deeper than JSON decoding goes
            self._holder: list[Any] | None = None
            self.places: list[Place] = [(function, "arguments")]
        else:
            self._holder = [value]
            self.places = list(_strings(self._holder))
        self._before = [container[key] for container, key in self.places]

    def rewrite(self, change: Callable[[str], str]) -> None:
        """Apply `change` to every text, then put the arguments back together."""
        for container, key in self.places:
            container[key] = change(container[key])
        self.commit()

    def commit(self) -> None:
        """Encode the arguments again if any of their texts was changed in place."""
        if self._holder is None:
            return
        if any(
            container[key] != before
            for (container, key), before in zip(self.places, self._before, strict=True)
        ):
            self._function["arguments"] = msgspec.json.encode(self._holder[0]).decode()


def tool_arguments(message: Any) -> list[ToolArguments]:
    """The arguments of every tool call of one message (request or answer), in order."""
    if not isinstance(message, dict):
        return []
    calls = message.get("tool_calls")
    found = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            found.append(ToolArguments(function))
    return found


def _strings(root: list[Any]) -> Iterator[Place]:
    """Every string in a decoded JSON value, depth first, without recursion (any depth)."""
    stack: list[Place] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, str):
            yield container, key
        elif isinstance(value, dict):
            stack.extend((value, name) for name in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value, index) for index in reversed(range(len(value))))
