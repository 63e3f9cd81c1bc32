from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from telemetry.alerts.http_client import close_shared_client


@pytest.fixture(autouse=True)
async def _close_client() -> AsyncIterator[None]:
    yield
    await close_shared_client()
