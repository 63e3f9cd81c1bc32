"""The admin API is tested through a real gateway process: the e2e fixtures, plus keys."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from tests.e2e.conftest import (  # the fixtures, for this package too
    Database,
    GatewayProcess,
    backend_database,
    gateway,
    mock_provider,
)

__all__ = [
    "backend_database",
    "create_key",
    "error_of",
    "gateway",
    "mock_provider",
    "workspace_keys",
]


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


def workspace_keys(gateway: GatewayProcess, prefix: str) -> tuple[str, str, str]:
    """A new workspace with an admin key and a user key of its own: (slug, admin, user)."""
    slug = f"{prefix}-{secrets.token_hex(4)}"
    with gateway.http() as http:
        made = http.post("/admin/api/workspaces", json={"slug": slug, "name": prefix.title()})
        assert made.status_code == 201, made.text
        keys = [
            http.post(
                "/admin/api/keys",
                json={"name": f"{prefix}-{role}", "workspace": slug, "role": role},
            )
            for role in ("master", "user")
        ]
    for key in keys:
        assert key.status_code == 201, key.text
    return slug, keys[0].json()["key"], keys[1].json()["key"]
