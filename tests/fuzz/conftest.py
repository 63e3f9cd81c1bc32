"""Fuzz fixtures: a gateway against the mock provider on each backend, its log kept in a file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Database, MockProcess, backend_database, mock_provider
from tests.fuzz.harness import FuzzGateway

__all__ = ["backend_database", "mock_provider"]


@pytest.fixture
def start_fuzz_gateway(
    mock_provider: MockProcess, tmp_path: Path
) -> Iterator[Callable[..., FuzzGateway]]:
    started: list[FuzzGateway] = []

    def start(database: Database, **config: Any) -> FuzzGateway:
        gateway = FuzzGateway(database, mock_provider, tmp_path, **config)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()
