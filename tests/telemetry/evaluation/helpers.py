"""Shared set-up of the evaluation tests: requests with or without content, a gateway config
whose judge is a Gemini model served by the fake, and readers of the evaluation tables."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import GatewayConfig, parse_config
from telemetry.records import TraceBundle
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.fake_gemini import FakeGemini
from tests.telemetry.request_bundles import request

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = [{"role": "assistant", "content": "Paris."}]


def chat(
    model: str = "gpt-x",
    *,
    content: bool = True,
    source: str = "proxy",
    workspace_id: str = DEFAULT_WORKSPACE_ID,
) -> TraceBundle:
    bundle = request(model=model, source=source, at=time.time(), workspace_id=workspace_id)
    interactions = [
        msgspec.structs.replace(
            i, prompt=PROMPT if content else None, response=ANSWER if content else None
        )
        for i in bundle.interactions
    ]
    return msgspec.structs.replace(bundle, interactions=interactions)


def judge_config(gemini: FakeGemini, **extra: Any) -> GatewayConfig:
    return parse_config(
        {
            "providers": {
                "google": {"type": "gemini", "base_url": gemini.base_url, "api_key": "gk-secret-1"}
            },
            "models": {"judge": [{"provider": "google", "model": "gemini-2.5-flash"}]},
            **extra,
        }
    )


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.text(sql), params)
        return [dict(row._mapping) for row in result]
