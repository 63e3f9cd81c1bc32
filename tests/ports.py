"""Ports for servers the tests start, handed out so that two of them never meet.

A port the kernel picks with `bind(0)` comes from the ephemeral range and is free again as soon
as the probe closes: another test process can be handed the same one before our server binds
it, and a readiness probe then reaches the other process's server. Each test process here takes
ports in turn from a block of its own below the ephemeral range, where no outgoing connection is
handed them. A block is held with a lock file for the life of the process, so test runs going on
side by side on one machine (two checkouts, each with its parallel workers) never share one.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_FIRST_PORT = 20_000
_BLOCK = 300
_BLOCKS = 40
_held: list[IO[bytes]] = []


def _preferred_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) % _BLOCKS if worker.isdigit() else 0


def _claim_block() -> int:
    """The first block, from this worker's own, that no other process holds."""
    folder = Path(tempfile.gettempdir()) / "steerway-test-ports"
    folder.mkdir(exist_ok=True)
    first = _preferred_block()
    for offset in range(_BLOCKS):
        block = (first + offset) % _BLOCKS
        lock = (folder / f"block-{block}.lock").open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held.append(lock)
        return block
    raise RuntimeError(f"every one of the {_BLOCKS} test port blocks is held by another process")


def _ports() -> Iterator[int]:
    start = _FIRST_PORT + _claim_block() * _BLOCK
    return itertools.cycle(range(start, start + _BLOCK))


_next_ports: Iterator[int] | None = None


def free_port() -> int:
    """The next port of this process's block that nothing listens on now."""
    global _next_ports
    if _next_ports is None:
        _next_ports = _ports()
    for _ in range(_BLOCK):
        port = next(_next_ports)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this test process's block of {_BLOCK}")


def closed_port() -> int:
    """A port nothing listens on: where a service that is down would be."""
    return free_port()
