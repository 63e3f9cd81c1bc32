"""`telemetry.durability: spill-first` on the request path: an answer's last bytes wait for its
records to be on disk, so a client that has the whole answer knows the request is recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

STREAM_END: Final = b"data: [DONE]\n\n"
"""A client of a chat stream has the whole answer once it reads this event, before the
response itself ends."""


class FinalMessageHold:
    """An ASGI `send` that passes messages on until the response's end: its final body message,
    or the one that ends a stream with `data: [DONE]`. From there on it keeps them, and
    `release()` sends them as one message."""

    __slots__ = ("_held", "_send")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._held: list[Message] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and (
            self._held
            or not message.get("more_body", False)
            or message.get("body", b"").endswith(STREAM_END)
        ):
            self._held.append(message)
            return
        await self._send(message)

    async def release(self) -> None:
        """Send what is held, if the response got as far as its end."""
        held, self._held = self._held, []
        if len(held) == 1:
            await self._send(held[0])
        elif held:
            body = b"".join(message.get("body", b"") for message in held)
            more = held[-1].get("more_body", False)
            await self._send({"type": "http.response.body", "body": body, "more_body": more})
