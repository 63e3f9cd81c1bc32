"""The gateway the inbound API tests (completions, Messages, Responses) run against: the mock
provider behind an OpenAI-type deployment (`mock-gpt`) and an Anthropic-type one (`sonnet`),
with each test file's own rules and guardrails."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Database, GatewayProcess, MockProcess


def inbound_gateway(
    database: Database, mock: MockProcess, directory: Path, **extra: Any
) -> Iterator[GatewayProcess]:
    """A started gateway, stopped when the generator is closed; `extra` adds config keys, and
    `extra_providers`/`extra_models` add to those (a provider's `base_url` of `{mock}` is the
    mock's)."""
    providers = {
        "mock": {"type": "openai", "base_url": mock.base_url},
        "claude": {
            "type": "anthropic",
            "base_url": mock.base_url,
            "api_key": "sk-ant-test-key-000000",
        },
    }
    for name, provider in extra.pop("extra_providers", {}).items():
        providers[name] = {**provider, "base_url": provider["base_url"].format(mock=mock.base_url)}
    config = {
        "providers": providers,
        "models": {
            "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
            "sonnet": [{"provider": "claude", "model": "claude-sonnet-4-5-20250929"}],
            **extra.pop("extra_models", {}),
        },
        **extra,
    }
    process = GatewayProcess(
        database, config, directory, master_key="sk-master-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


def inbound_gateway_fixture(name: str, **extra: Any) -> Any:
    """The module's `gateway` fixture: one `inbound_gateway` for the module's tests."""

    @pytest.fixture(scope="module")
    def gateway(
        backend_database: Database,
        mock_provider: MockProcess,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[GatewayProcess]:
        yield from inbound_gateway(
            backend_database, mock_provider, tmp_path_factory.mktemp(name), **extra
        )

    return gateway
