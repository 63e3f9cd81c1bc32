"""`telemetry.durability: spill-first` on the request path: an answer's last bytes wait for its
records to be on disk, so a client that has the whole answer knows the request is recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class FinalMessageHold:
    """An ASGI `send` that passes every message on except the response's final body message,
    which it keeps until `release()`."""

    __slots__ = ("_final", "_send")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._final: Message | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._final = message
            return
        await self._send(message)

    async def release(self) -> None:
        """Send the final message, if the response got as far as one."""
        final, self._final = self._final, None
        if final is not None:
            await self._send(final)
