"""The TCP forwarder that outages are made with: relay, cut, stall and slow, over real sockets,
in a thread of the test's process and in a process of its own."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks.forwarder import ForwarderProcess, TcpForwarder


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


Forwarder = TcpForwarder | ForwarderProcess


@pytest.fixture(params=["thread", "process"])
def forwarder(request: pytest.FixtureRequest) -> Iterator[Forwarder]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    forwarder: Forwarder = (
        TcpForwarder("127.0.0.1", port).start()
        if request.param == "thread"
        else ForwarderProcess("127.0.0.1", port)
    )
    try:
        yield forwarder
    finally:
        forwarder.close()
        server.shutdown()
        server.server_close()


def connect(forwarder: Forwarder, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", forwarder.port), timeout=timeout)


def round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_it_relays_both_ways(forwarder: Forwarder) -> None:
    with connect(forwarder) as sock:
        assert round_trip(sock, b"ping-1") == b"ping-1"
        assert round_trip(sock, b"x" * 200_000) == b"x" * 200_000
    assert forwarder.url("redis://127.0.0.1:6379/11") == f"redis://127.0.0.1:{forwarder.port}/11"


def test_a_cut_drops_open_connections_and_refuses_new_ones_until_restored(
    forwarder: Forwarder,
) -> None:
    with connect(forwarder) as sock:
        assert round_trip(sock, b"before") == b"before"
        forwarder.cut()
        with pytest.raises(OSError):
            sock.sendall(b"after")
            if not sock.recv(16):
                raise ConnectionResetError("closed")
    with pytest.raises(ConnectionRefusedError):
        connect(forwarder)
    forwarder.restore()
    with connect(forwarder) as sock:
        assert round_trip(sock, b"again") == b"again"


def test_a_stall_relays_nothing_until_restored_and_loses_nothing(
    forwarder: Forwarder,
) -> None:
    with connect(forwarder) as open_before:
        assert round_trip(open_before, b"warm") == b"warm"
        forwarder.stall()
        open_before.settimeout(0.3)
        open_before.sendall(b"held")
        with pytest.raises(TimeoutError):
            open_before.recv(16)
        with connect(forwarder) as opened_during:  # accepted, then nothing
            opened_during.settimeout(0.3)
            opened_during.sendall(b"waiting")
            with pytest.raises(TimeoutError):
                opened_during.recv(16)
            forwarder.restore()
            opened_during.settimeout(5)
            assert opened_during.recv(16) == b"waiting"
        open_before.settimeout(5)
        assert open_before.recv(16) == b"held"


def test_slow_delays_each_direction_and_keeps_the_order(forwarder: Forwarder) -> None:
    with connect(forwarder) as sock:
        forwarder.slow(0.1)
        started = time.monotonic()
        assert round_trip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.2  # 0.1 s there and 0.1 s back
        started = time.monotonic()
        for number in range(5):
            sock.sendall(b"%d" % number)
        received = b""
        while len(received) < 5:
            received += sock.recv(16)
        assert received == b"01234"
        assert time.monotonic() - started >= 0.2
        forwarder.restore()
        assert round_trip(sock, b"fast") == b"fast"
