"""Ports for servers the tests start, handed out so that two of them never meet.

A port the kernel picks with `bind(0)` comes from the ephemeral range and is free again as soon
as the probe closes: a parallel test worker can be handed the same one before our server binds
it, and a readiness probe then reaches the other worker's server. Each test worker here takes
ports in turn from its own block below the ephemeral range, where neither another worker nor an
outgoing connection is handed them.
"""

from __future__ import annotations

import itertools
import os
import socket

_FIRST_PORT = 20_000
_BLOCK = 600
_BLOCKS = 20


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = worker.removeprefix("gw")
    return int(digits) % _BLOCKS if digits.isdigit() else 0


def _ports() -> itertools.cycle[int]:
    start = _FIRST_PORT + _worker_index() * _BLOCK
    return itertools.cycle(range(start, start + _BLOCK))


_next_ports = _ports()


def free_port() -> int:
    """The next port of this worker's block that nothing listens on now."""
    for _ in range(_BLOCK):
        port = next(_next_ports)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this test worker's block of {_BLOCK}")


def closed_port() -> int:
    """A port nothing listens on: where a service that is down would be."""
    return free_port()
