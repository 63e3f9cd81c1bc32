"""A response's status line and headers leave in the same send as its first body bytes.

uvicorn writes the head of a response to the socket as soon as the app sends
`http.response.start`, and the body with the next message: two system calls and two packets for
every answer, where the app sends both in the same turn of the event loop. A system call is the
dearest thing a request does here (about 90 µs each on the reference machine, against a few µs
of Python for most steps), so the head waits for the body's first write and the two go out as
one. Nothing waits past the current turn: a head whose body does not follow in the same turn (a
stream still waiting for the provider) goes out on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

JOIN_LIMIT = 65536
"""A body up to this size is copied after the head; a larger one goes with it in one writev."""


class HeadWithBody:
    """The transport as one response's cycle sees it (uvicorn's `RequestResponseCycle.transport`);
    everything but the holding of the head goes straight to the connection's transport."""

    __slots__ = ("_flush", "_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            assert self._flush is not None
            self._flush.cancel()
            if len(data) <= JOIN_LIMIT:
                self._transport.write(head + data)
            else:
                self._transport.writelines((head, data))
        elif self._flush is None:
            self._head = data
            self._flush = self._loop.call_soon(self._write_head)
        else:
            self._transport.write(data)

    def _write_head(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._write_head()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = len(self._head) if self._head is not None else 0
        return self._transport.get_write_buffer_size() + held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
