"""The admin API is tested through a real gateway process: the e2e fixtures, plus keys."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.keys import KeyStore
from telemetry.db import create_engine
from tests.e2e.conftest import (  # the fixtures, for this package too
    Database,
    backend_database,
    gateway,
    mock_provider,
)

__all__ = ["backend_database", "create_key", "error_of", "gateway", "mock_provider"]


def create_key(database: Database, name: str, role: str = "user") -> str:
    """A new virtual key's plaintext, stored the way `steerway keys create` stores one."""

    async def create() -> str:
        engine = create_engine(database.url)
        try:
            return (await KeyStore(engine).create(name, role=role)).plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI-shaped error of a response that must have `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert "Traceback" not in error["message"]
    return error
