"""A response's head leaves with its first body bytes, over a real loopback connection."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.entry.response_writes import JOIN_LIMIT, HeadWithBody


class CountedWrites:
    """A real transport, with the writes that reach it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.transport.write(data)

    def writelines(self, lines: tuple[bytes, ...]) -> None:
        self.writes.append(sum(len(line) for line in lines))
        self.transport.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def connected() -> tuple[CountedWrites, asyncio.StreamReader, asyncio.AbstractServer]:
    received: asyncio.Future[asyncio.StreamReader] = asyncio.get_running_loop().create_future()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(reader)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_connection(
        asyncio.Protocol, "127.0.0.1", port
    )
    return CountedWrites(transport), await received, server


async def test_a_head_and_the_body_written_in_one_turn_leave_in_one_write() -> None:
    counted, reader, server = await connected()
    writes = HeadWithBody(counted, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert counted.writes == []
    writes.write(b"ok")
    writes.write(b"")  # later writes go straight through
    assert counted.writes == [40, 0]
    assert await reader.readexactly(40) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    writes.close()
    server.close()


async def test_a_head_alone_goes_out_at_the_next_turn_and_a_large_body_is_not_copied() -> None:
    counted, reader, server = await connected()
    writes = HeadWithBody(counted, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert writes.get_write_buffer_size() >= 19
    await asyncio.sleep(0)
    assert counted.writes == [19]
    assert await reader.readexactly(19) == b"HTTP/1.1 200 OK\r\n\r\n"
    writes.close()

    counted, reader, server2 = await connected()
    writes = HeadWithBody(counted, asyncio.get_running_loop())  # type: ignore[arg-type]
    body = b"x" * (JOIN_LIMIT + 1)
    writes.write(b"HEAD\r\n\r\n")
    writes.write(body)
    assert counted.writes == [8 + len(body)]
    assert await reader.readexactly(8 + len(body)) == b"HEAD\r\n\r\n" + body
    writes.close()
    server.close()
    server2.close()


async def test_closing_sends_a_held_head_first() -> None:
    counted, reader, server = await connected()
    writes = HeadWithBody(counted, asyncio.get_running_loop())  # type: ignore[arg-type]
    writes.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    writes.close()
    assert await reader.read() == b"HTTP/1.1 204 No Content\r\n\r\n"
    server.close()
