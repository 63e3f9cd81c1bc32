"""`cost_saved_usd` (what a cache hit saved) lands exactly, through every write path, on SQLite
and Postgres: the fast path (COPY / executemany) and the careful one used for replays."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.records import TraceBundle
from telemetry.schema import ai_interactions
from telemetry.writers import BatchWriter
from tests.telemetry import fetch_table, make_bundle


def cache_hit(saved: Decimal | None) -> TraceBundle:
    bundle = make_bundle(cost=Decimal(0), cache_hit=True)
    (interaction,) = bundle.interactions
    bundle.interactions[0] = msgspec.structs.replace(interaction, cost_saved_usd=saved)
    return bundle


@pytest.mark.parametrize("skip_existing", [False, True], ids=["fast", "careful"])
async def test_the_cost_a_cache_hit_saved_is_stored(
    engine: AsyncEngine, skip_existing: bool
) -> None:
    hits = [cache_hit(Decimal("0.0012345678")), cache_hit(Decimal("42.5")), cache_hit(None)]
    miss = make_bundle(cost=Decimal("0.25"))
    await BatchWriter(engine).write([*hits, miss], skip_existing=skip_existing)

    stored = {row["trace_id"]: row for row in await fetch_table(engine, ai_interactions)}
    saved = [stored[bundle.trace.trace_id]["cost_saved_usd"] for bundle in hits]
    assert saved == [Decimal("0.0012345678"), Decimal("42.5"), None]
    assert all(stored[bundle.trace.trace_id]["cost_usd"] == 0 for bundle in hits)
    assert stored[miss.trace.trace_id]["cost_saved_usd"] is None
    assert stored[miss.trace.trace_id]["cost_usd"] == Decimal("0.25")


def test_old_spilled_records_without_the_field_still_decode() -> None:
    bundle = make_bundle()
    encoded = msgspec.json.encode(bundle)
    assert b"cost_saved_usd" in encoded
    legacy = encoded.replace(b'"cost_saved_usd":null,', b"")
    assert b"cost_saved_usd" not in legacy
    decoded = msgspec.json.decode(legacy, type=TraceBundle)
    assert decoded.interactions[0].cost_saved_usd is None
