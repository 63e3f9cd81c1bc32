"""The Redis budget ledger: workers sharing one Redis, Redis losing its data, Redis failing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.budgets import BudgetLedger, BudgetPolicy, Charge, create_budget_ledger
from telemetry.schema import budget_spend
from tests.gateway.test_budgets import NOW, TEST_POLICY, WORKSPACE, charge, counter, state
from tests.ports import closed_port

PREFIX = TEST_POLICY.key_prefix

MakeLedger = Callable[..., BudgetLedger]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def ledgers(redis_url: str) -> AsyncIterator[Callable[..., BudgetLedger]]:
    """Ledgers on the test Redis, like separate workers; each closed afterwards."""
    made: list[BudgetLedger] = []

    def make(engine: AsyncEngine | None = None, policy: BudgetPolicy = TEST_POLICY) -> BudgetLedger:
        ledger = create_budget_ledger(redis_url, engine, policy, clock=lambda: NOW)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.close()


async def spent_in_db(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        total = await connection.scalar(sa.select(sa.func.sum(budget_spend.c.spent_micros)))
    return int(total or 0)


async def test_two_workers_sharing_redis_never_overspend_together(
    ledgers: Callable[..., BudgetLedger],
) -> None:
    first, second = ledgers(), ledgers()
    await asyncio.gather(first.start(), second.start())
    hold, admitted = 5_000, 23
    budget = charge(hold * admitted + 4_999, "monthly", scope="workspace", subject=WORKSPACE)
    all_reserved = asyncio.Event()
    done = 0

    async def request(i: int) -> int:
        nonlocal done
        ledger = (first, second)[i % 2]
        reservation = await ledger.reserve([budget], hold, NOW)
        done += 1
        if done == 200:
            all_reserved.set()
        await all_reserved.wait()
        if not reservation.ok:
            return 0
        cost = hold - i % 11
        await ledger.settle(reservation, cost)
        return cost

    costs = await asyncio.gather(*(request(i) for i in range(200)))

    settled = [cost for cost in costs if cost]
    assert len(settled) == admitted
    assert await state(first, budget) == (sum(settled), 0)
    assert await state(second, budget) == (sum(settled), 0)


async def test_a_worker_that_died_holding_money_frees_it_when_the_hold_expires(
    ledgers: Callable[..., BudgetLedger],
) -> None:
    policy = replace(TEST_POLICY, reservation_ttl=30)
    doomed, survivor = ledgers(policy=policy), ledgers(policy=policy)
    await doomed.start()
    await survivor.start()
    budget = charge(9_000)
    assert (await doomed.reserve([budget], 9_000, NOW)).ok
    await doomed.close()  # never settles nor releases: like a crash

    assert not (await survivor.reserve([budget], 1, NOW + 29)).ok
    assert (await survivor.reserve([budget], 9_000, NOW + 31)).ok


async def test_keys_expire_after_their_window_and_total_ones_never(
    ledgers: Callable[..., BudgetLedger], client: aioredis.Redis
) -> None:
    ledger = ledgers(policy=replace(TEST_POLICY, expiry_margin=3600))
    await ledger.start()
    daily = charge(1_000, "daily", timezone="Europe/Berlin")  # ends 22:00 UTC: in 10 hours
    total = charge(1_000, "total", scope="bucket", subject="premium")
    await ledger.settle(await ledger.reserve([daily, total], 500, NOW), 400)
    held = await ledger.reserve([daily, total], 100, NOW)
    assert held.ok

    start = int(NOW) - 14 * 3600
    spend_key = f"{PREFIX}:spend:daily:{start}:key:key-1"
    held_key = f"{PREFIX}:held:daily:{start}:key:key-1"
    assert await client.hgetall(spend_key) == {"spent": "400", "reserved": "100"}
    for key in (spend_key, held_key):
        ttl = await client.pttl(key)
        assert 11 * 3600 * 1000 - 60_000 < ttl <= 11 * 3600 * 1000
    total_key = f"{PREFIX}:spend:total:0:bucket:{WORKSPACE}/premium"
    assert await client.hgetall(total_key) == {"spent": "400", "reserved": "100"}
    assert await client.pttl(total_key) == -1


async def test_redis_emptied_while_running_is_rebuilt_from_the_database(
    ledgers: Callable[..., BudgetLedger], engine: AsyncEngine, client: aioredis.Redis
) -> None:
    ledger = ledgers(engine, replace(TEST_POLICY, flush_interval=0.05))
    await ledger.start()
    budget = charge(1_000_000)
    await ledger.settle(await ledger.reserve([budget], 700_000, NOW), 700_000)
    for _ in range(200):
        if await spent_in_db(engine) == 700_000:
            break
        await asyncio.sleep(0.05)
    assert await spent_in_db(engine) == 700_000

    await client.flushdb()

    refused = await ledger.reserve([budget], 400_000, NOW)
    assert refused.denied is not None
    assert (refused.denied.spent_micros, refused.denied.reserved_micros) == (700_000, 0)
    assert await client.exists(f"{PREFIX}:loaded")
    assert (await ledger.reserve([budget], 300_000, NOW)).ok


async def test_a_rebuild_counts_this_workers_spend_not_yet_written(
    ledgers: Callable[..., BudgetLedger], engine: AsyncEngine, client: aioredis.Redis
) -> None:
    ledger = ledgers(engine, replace(TEST_POLICY, flush_interval=3600))
    await ledger.start()
    budget = charge(1_000_000)
    await ledger.settle(await ledger.reserve([budget], 600_000, NOW), 600_000)
    assert await spent_in_db(engine) == 0  # not flushed yet

    await client.flushdb()
    late = await ledger.reserve([budget], 200_000, NOW)  # rebuilds Redis first
    assert late.ok
    await ledger.settle(late, 100_000)  # counted once, though it waits in the same pending map

    assert await state(ledger, budget) == (700_000, 0)
    await ledger.close()
    assert await spent_in_db(engine) == 700_000


async def test_a_settlement_after_redis_lost_its_data_still_counts(
    ledgers: Callable[..., BudgetLedger], engine: AsyncEngine, client: aioredis.Redis
) -> None:
    ledger = ledgers(engine)
    await ledger.start()
    budget = charge(1_000_000)
    await ledger.settle(await ledger.reserve([budget], 300_000, NOW), 300_000)
    running = await ledger.reserve([budget], 500_000, NOW)

    await client.flushdb()
    await ledger.settle(running, 450_000)

    assert await state(ledger, budget) == (750_000, 0)


async def test_workers_rebuilding_at_once_count_the_persisted_spend_once(
    ledgers: Callable[..., BudgetLedger], engine: AsyncEngine, client: aioredis.Redis
) -> None:
    budget = charge(1_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    writer = ledgers(engine)
    await writer.start()
    await writer.settle(await writer.reserve([budget], 500_000, NOW), 500_000)
    await writer.close()
    await client.flushdb()

    workers = [ledgers(engine) for _ in range(4)]
    await asyncio.gather(*(worker.start() for worker in workers))
    reservations = await asyncio.gather(
        *(worker.reserve([budget], 100_000, NOW) for worker in workers)
    )

    assert all(reservation.ok for reservation in reservations)
    assert await state(workers[0], budget) == (500_000, 400_000)
    refused = await workers[1].reserve([budget], 100_001, NOW)
    assert refused.denied is not None


async def test_rebuilds_racing_with_traffic_never_overwrite_it(
    ledgers: Callable[..., BudgetLedger], engine: AsyncEngine, client: aioredis.Redis
) -> None:
    budget = charge(10_000_000, "monthly")
    seeded = ledgers(engine)
    await seeded.start()
    await seeded.settle(await seeded.reserve([budget], 1_000_000, NOW), 1_000_000)
    await seeded.close()
    await client.flushdb()

    workers = [ledgers(engine) for _ in range(3)]

    async def traffic(worker: BudgetLedger, i: int) -> None:
        if i == 0:
            await worker.start()
        reservation = await worker.reserve([budget], 10_000, NOW)
        assert reservation.ok
        await worker.settle(reservation, 10_000)

    await asyncio.gather(*(traffic(workers[i % 3], i) for i in range(30)))

    assert await state(workers[0], budget) == (1_300_000, 0)


@pytest.mark.parametrize("on_error", ["open", "closed"])
async def test_unreachable_redis_applies_the_failure_policy(
    engine: AsyncEngine, on_error: str
) -> None:
    policy = BudgetPolicy(on_redis_error=on_error, redis_timeout=0.2)  # type: ignore[arg-type]
    url = f"redis://127.0.0.1:{closed_port()}/0"
    ledger = create_budget_ledger(url, engine, policy, clock=lambda: NOW)
    errors_before = counter("steerway_redis_errors_total", concern="budgets")
    await ledger.start()  # does not raise
    budget = charge(1_000)
    try:
        reservation = await ledger.reserve([budget], 500, NOW)
        if on_error == "open":
            assert reservation.ok and reservation.degraded and not reservation.unavailable
            settlement = await ledger.settle(reservation, 400)
            assert settlement.degraded
        else:
            assert not reservation.ok and reservation.unavailable and reservation.denied is None
            await ledger.release(reservation)
        assert await ledger.percent_used([budget], NOW) == {}
    finally:
        await ledger.close()
    assert counter("steerway_redis_errors_total", concern="budgets") > errors_before
    # What an open ledger let through is still persisted.
    assert await spent_in_db(engine) == (400 if on_error == "open" else 0)


@pytest.mark.parametrize("on_error", ["open", "closed"])
async def test_a_redis_that_never_answers_times_out(on_error: str) -> None:
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    policy = BudgetPolicy(on_redis_error=on_error, redis_timeout=0.2)  # type: ignore[arg-type]
    ledger = create_budget_ledger(f"redis://127.0.0.1:{port}/0", None, policy, clock=lambda: NOW)
    try:
        await asyncio.wait_for(ledger.start(), 30)
        budget: list[Charge] = [charge(1_000)]
        reservation = await asyncio.wait_for(ledger.reserve(budget, 10, NOW), 30)
        assert reservation.ok is (on_error == "open")
        assert reservation.degraded is (on_error == "open")
        assert reservation.unavailable is (on_error == "closed")
        await asyncio.wait_for(ledger.release(reservation), 30)
    finally:
        await ledger.close()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
