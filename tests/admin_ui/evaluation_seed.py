"""Seeding a running gateway's database for the on-demand evaluation tests, from synchronous
tests: evaluators, and requests whose answers were stored or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine
from telemetry.records import TraceBundle
from tests.telemetry.evaluation.on_demand_rows import add_evaluator, write

T = TypeVar("T")


def on_database(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def evaluator(url: str, workspace_id: str, name: str, **options: Any) -> str:
    return on_database(url, lambda engine: add_evaluator(engine, workspace_id, name, **options))


def stored(url: str, *bundles: TraceBundle) -> None:
    on_database(url, lambda engine: write(engine, *bundles))


def execute(url: str, sql: str, **params: Any) -> None:
    """A change made behind the gateway's back (a worker's, say)."""

    async def run(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql), params)

    on_database(url, run)
