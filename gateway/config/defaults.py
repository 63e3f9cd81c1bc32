"""The configuration used when no file is given: OpenAI when its key is set, else the mock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.file import GatewayConfig, parse_config

OPENAI_DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
MOCK_MODELS = ("mock-gpt", "mock-gpt-large", "mock-embedding")


def wants_mock(environ: Mapping[str, str]) -> bool:
    """No config file and no provider key: serve the built-in mock provider."""
    return not environ.get("OPENAI_API_KEY")


def default_config(environ: Mapping[str, str], mock_base_url: str | None = None) -> GatewayConfig:
    data: dict[str, Any]
    if mock_base_url is not None:
        data = {
            "providers": {"mock": {"type": "openai", "base_url": mock_base_url}},
            "models": {name: [{"provider": "mock", "model": name}] for name in MOCK_MODELS},
        }
    else:
        data = {
            "providers": {
                "openai": {
                    "type": "openai",
                    "base_url": "${OPENAI_BASE_URL:-https://api.openai.com/v1}",
                    "api_key": "${OPENAI_API_KEY}",
                }
            },
            "models": {
                name: [{"provider": "openai", "model": name}] for name in OPENAI_DEFAULT_MODELS
            },
        }
    return parse_config(data, environ)
