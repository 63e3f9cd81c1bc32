"""The spill-first hold on an answer's end: the last bytes wait, everything before goes out."""

from __future__ import annotations

from typing import Any

from gateway.upstream.answer_hold import FinalMessageHold

START = {"type": "http.response.start", "status": 200, "headers": []}


class Server:
    """What the ASGI server was handed, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def body(data: bytes, *, more: bool) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def test_a_plain_answer_keeps_only_its_body_back() -> None:
    server = Server()
    hold = FinalMessageHold(server.send)
    await hold.send(START)
    await hold.send(body(b'{"id": "x"}', more=False))
    assert server.sent == [START]
    await hold.release()
    assert server.sent == [START, body(b'{"id": "x"}', more=False)]


async def test_a_stream_keeps_back_the_event_that_ends_it() -> None:
    server = Server()
    hold = FinalMessageHold(server.send)
    await hold.send(START)
    await hold.send(body(b'data: {"n": 1}\n\n', more=True))
    await hold.send(body(b'data: {"n": 2}\n\ndata: [DONE]\n\n', more=True))
    await hold.send(body(b"", more=False))
    assert server.sent == [START, body(b'data: {"n": 1}\n\n', more=True)]
    await hold.release()
    assert server.sent[2:] == [body(b'data: {"n": 2}\n\ndata: [DONE]\n\n', more=False)]


async def test_nothing_is_sent_for_a_response_that_never_started() -> None:
    server = Server()
    hold = FinalMessageHold(server.send)
    await hold.release()
    assert server.sent == []
