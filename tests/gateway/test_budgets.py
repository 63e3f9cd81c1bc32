"""The budget ledger's behaviour, on the in-process backend and through a real Redis.

Times are passed in explicitly (`now`), so window boundaries and reservation expiry are exact on
both backends. A budget's state is read through the public API: a reservation larger than the
limit is always refused, and the refusal reports the budget's spent and reserved amounts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from gateway.limits.budgets import (
    BudgetLedger,
    BudgetLimit,
    BudgetPolicy,
    Charge,
    Reservation,
    create_budget_ledger,
    reserve_micros,
    settle_micros,
)

WORKSPACE = "ws0000000000000000000000000000001"[:32]
NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC).timestamp()  # a Wednesday
# Tests that are not about timeouts must not fail because a busy machine delayed a reply.
TEST_POLICY = BudgetPolicy(redis_timeout=2.0)

MakeLedger = Callable[..., Awaitable[BudgetLedger]]


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def charge(
    limit: int,
    window: str = "daily",
    *,
    scope: str = "key",
    subject: str = "key-1",
    workspace_id: str = WORKSPACE,
    soft: float | None = None,
    timezone: str = "UTC",
) -> Charge:
    return Charge(scope, subject, workspace_id, BudgetLimit(limit, window, soft), timezone)


async def state(ledger: BudgetLedger, budget: Charge, now: float = NOW) -> tuple[int, int]:
    """(spent, reserved) of one budget, read through a reservation it must refuse."""
    probe = await ledger.reserve([budget], budget.limit.limit_micros + 1, now)
    assert probe.denied is not None
    return probe.denied.spent_micros, probe.denied.reserved_micros


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(params=["in-process", "redis"])
async def make_ledger(request: pytest.FixtureRequest) -> AsyncIterator[MakeLedger]:
    """Started ledgers of the parametrised backend (sharing one Redis), closed afterwards."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    ledgers: list[BudgetLedger] = []

    async def make(policy: BudgetPolicy | None = None, **options: object) -> BudgetLedger:
        ledger = create_budget_ledger(url, None, policy or TEST_POLICY, **options)  # type: ignore[arg-type]
        await ledger.start()
        ledgers.append(ledger)
        return ledger

    yield make
    for ledger in ledgers:
        await ledger.close()


@pytest.fixture
async def ledger(make_ledger: MakeLedger) -> BudgetLedger:
    return await make_ledger()


async def test_a_reservation_holds_money_until_settled_and_settling_frees_the_rest(
    ledger: BudgetLedger,
) -> None:
    budget = charge(10_000)
    first = await ledger.reserve([budget], 6_000, NOW)
    assert first.ok and not first.degraded
    assert await state(ledger, budget) == (0, 6_000)

    refused = await ledger.reserve([budget], 5_000, NOW)
    assert not refused.ok and refused.denied is not None
    assert (refused.denied.spent_micros, refused.denied.reserved_micros) == (0, 6_000)

    await ledger.settle(first, 2_000)
    assert await state(ledger, budget) == (2_000, 0)
    assert (await ledger.reserve([budget], 8_000, NOW)).ok
    assert not (await ledger.reserve([budget], 1, NOW)).ok


async def test_a_request_must_pass_every_budget_and_a_refusal_holds_nothing(
    ledger: BudgetLedger,
) -> None:
    key = charge(10_000, "monthly")
    workspace = charge(3_000, "daily", scope="workspace", subject=WORKSPACE)
    user = charge(50_000, "total", scope="end_user", subject="alice")
    denied_before = counter("steerway_budget_denied_total", scope="workspace")

    refused = await ledger.reserve([key, workspace, user], 4_000, NOW)

    assert not refused.ok and refused.denied is not None
    assert refused.denied.scope == "workspace"
    assert refused.denied.subject == WORKSPACE
    assert refused.denied.limit_micros == 3_000
    assert counter("steerway_budget_denied_total", scope="workspace") == denied_before + 1
    assert await state(ledger, key) == (0, 0)
    assert await state(ledger, user) == (0, 0)

    held = await ledger.reserve([key, workspace, user], 3_000, NOW)
    assert held.ok
    for budget in (key, workspace, user):
        assert await state(ledger, budget) == (0, 3_000)


async def test_release_frees_the_hold_and_only_once(ledger: BudgetLedger) -> None:
    budget = charge(5_000)
    failed = await ledger.reserve([budget], 5_000, NOW)
    assert failed.ok
    await ledger.release(failed)
    await ledger.release(failed)
    await ledger.settle(failed, 4_000)  # already finished: ignored

    assert await state(ledger, budget) == (0, 0)
    again = await ledger.reserve([budget], 5_000, NOW)
    assert again.ok
    assert await state(ledger, budget) == (0, 5_000)


async def test_settling_twice_charges_once(ledger: BudgetLedger) -> None:
    budget = charge(5_000)
    reservation = await ledger.reserve([budget], 2_000, NOW)
    await ledger.settle(reservation, 1_500)
    await ledger.settle(reservation, 1_500)
    assert await state(ledger, budget) == (1_500, 0)


async def test_a_settlement_may_exceed_the_hold_and_the_budget_then_refuses_everything(
    ledger: BudgetLedger,
) -> None:
    budget = charge(5_000)
    reservation = await ledger.reserve([budget], 1_000, NOW)
    await ledger.settle(reservation, 6_000)
    assert await state(ledger, budget) == (6_000, 0)
    assert not (await ledger.reserve([budget], 0, NOW)).ok


async def test_a_settlement_of_nothing_just_releases(ledger: BudgetLedger) -> None:
    budget = charge(5_000)
    reservation = await ledger.reserve([budget], 5_000, NOW)
    settlement = await ledger.settle(reservation, 0)
    assert settlement.soft_limits == ()
    assert await state(ledger, budget) == (0, 0)


async def test_the_refusal_names_the_budget_and_when_it_resets(ledger: BudgetLedger) -> None:
    daily = charge(1_000_000, timezone="Europe/Berlin")
    spend = await ledger.reserve([daily], 900_000, NOW)
    await ledger.settle(spend, 900_000)

    refused = await ledger.reserve([daily], 200_000, NOW)
    assert refused.denied is not None
    assert refused.denied.resets_at == datetime(2024, 5, 15, 22, 0, tzinfo=UTC)
    assert refused.denied.window == "daily"
    message = refused.denied.denial_message()
    assert "daily budget of $1.00 for API key 'key-1'" in message
    assert "$0.90 spent or reserved" in message
    assert "resets at 2024-05-15T22:00:00Z" in message

    forever = charge(100, "total", scope="bucket", subject="premium")
    refused = await ledger.reserve([forever], 200, NOW)
    assert refused.denied is not None
    assert refused.denied.resets_at is None
    assert "total budget of $0.0001 for budget bucket 'premium'" in refused.denied.denial_message()
    assert "does not reset" in refused.denied.denial_message()


@pytest.mark.parametrize(
    ("window", "tz", "last_instant", "next_window", "same_window"),
    [
        (
            "daily",
            "Europe/Berlin",
            "2024-05-15T23:59:59",
            "2024-05-16T00:00:00",
            "2024-05-15T00:00:00",
        ),
        (
            "weekly",
            "America/New_York",
            "2024-05-19T23:59:59",
            "2024-05-20T00:00:00",
            "2024-05-13T00:00:00",
        ),
        (
            "monthly",
            "Asia/Tokyo",
            "2024-02-29T23:59:59",
            "2024-03-01T00:00:00",
            "2024-02-01T00:00:00",
        ),
    ],
)
async def test_spend_counts_until_the_window_ends_in_its_time_zone(
    ledger: BudgetLedger,
    window: str,
    tz: str,
    last_instant: str,
    next_window: str,
    same_window: str,
) -> None:
    budget = charge(1_000, window, timezone=tz)
    spend = await ledger.reserve([budget], 1_000, at(last_instant, tz))
    await ledger.settle(spend, 1_000)

    assert await state(ledger, budget, at(same_window, tz)) == (1_000, 0)
    assert await state(ledger, budget, at(last_instant, tz)) == (1_000, 0)
    fresh = await ledger.reserve([budget], 1_000, at(next_window, tz))
    assert fresh.ok
    await ledger.release(fresh)


async def test_a_total_budget_never_resets(ledger: BudgetLedger) -> None:
    budget = charge(1_000, "total")
    await ledger.settle(await ledger.reserve([budget], 1_000, NOW), 1_000)
    assert not (await ledger.reserve([budget], 1, NOW + 400 * 86400)).ok


async def test_a_soft_limit_crossing_is_reported_by_one_settlement(ledger: BudgetLedger) -> None:
    budget = charge(1_000, soft=80)
    other = charge(1_000_000, "monthly", scope="workspace", subject=WORKSPACE, soft=50)
    crossed_before = counter("steerway_budget_soft_limit_total", scope="key")
    reports = []
    for cost in (300, 300, 250, 100, 40):
        reservation = await ledger.reserve([budget, other], cost, NOW)
        assert reservation.ok
        reports.append((await ledger.settle(reservation, cost)).soft_limits)

    assert [len(report) for report in reports] == [0, 0, 1, 0, 0]
    crossed = reports[2][0]
    assert (crossed.scope, crossed.subject, crossed.soft_percent) == ("key", "key-1", 80)
    assert (crossed.spent_micros, crossed.limit_micros) == (850, 1_000)
    assert counter("steerway_budget_soft_limit_total", scope="key") == crossed_before + 1


async def test_concurrent_settlements_report_a_crossing_once(ledger: BudgetLedger) -> None:
    budget = charge(100_000, soft=50)
    reservations = [await ledger.reserve([budget], 1_000, NOW) for _ in range(90)]
    assert all(reservation.ok for reservation in reservations)

    settlements = await asyncio.gather(*(ledger.settle(r, 1_000) for r in reservations))

    assert sum(len(s.soft_limits) for s in settlements) == 1
    assert await state(ledger, budget) == (90_000, 0)


async def test_200_concurrent_requests_against_a_budget_that_admits_exactly_n(
    ledger: BudgetLedger,
) -> None:
    hold, admitted = 7_000, 37
    budget = charge(hold * admitted + hold - 1, "monthly")
    workspace = charge(10**12, "monthly", scope="workspace", subject=WORKSPACE)
    all_reserved = asyncio.Event()
    done = 0

    async def request(i: int) -> int:
        nonlocal done
        reservation = await ledger.reserve([budget, workspace], hold, NOW)
        done += 1
        if done == 200:
            all_reserved.set()
        await all_reserved.wait()  # every request holds its money before any settles
        if not reservation.ok:
            return 0
        cost = hold - i % 13
        await ledger.settle(reservation, cost)
        return cost

    costs = await asyncio.gather(*(request(i) for i in range(200)))

    settled = [cost for cost in costs if cost]
    assert len(settled) == admitted
    assert await state(ledger, budget) == (sum(settled), 0)
    assert await state(ledger, workspace) == (sum(settled), 0)


async def test_an_abandoned_reservation_expires(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger(replace(TEST_POLICY, reservation_ttl=60))
    budget = charge(5_000)
    abandoned = await ledger.reserve([budget], 5_000, NOW)
    assert abandoned.ok

    assert not (await ledger.reserve([budget], 1, NOW + 59)).ok
    later = await ledger.reserve([budget], 5_000, NOW + 61)
    assert later.ok
    assert await state(ledger, budget, NOW + 61) == (0, 5_000)

    # The abandoned request settles after all: its cost counts, its expired hold is not freed
    # a second time.
    await ledger.settle(abandoned, 1_000)
    assert await state(ledger, budget, NOW + 62) == (1_000, 5_000)
    await ledger.release(later)
    assert await state(ledger, budget, NOW + 62) == (1_000, 0)


async def test_percent_used_reports_the_fullest_budget_per_scope(ledger: BudgetLedger) -> None:
    daily = charge(10_000, "daily")
    monthly = charge(100_000, "monthly")
    workspace = charge(1_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    assert await ledger.percent_used([daily, monthly, workspace], NOW) == {
        "key_percent": 0.0,
        "workspace_percent": 0.0,
    }

    reservation = await ledger.reserve([daily, monthly, workspace], 5_000, NOW)
    assert await ledger.percent_used([daily, monthly, workspace], NOW) == {
        "key_percent": 0.0,
        "workspace_percent": 0.0,
    }
    await ledger.settle(reservation, 2_500)

    assert await ledger.percent_used([daily, monthly, workspace], NOW) == {
        "key_percent": 25.0,
        "workspace_percent": 0.25,
    }
    assert await ledger.percent_used([workspace], NOW) == {"workspace_percent": 0.25}
    assert await ledger.percent_used([], NOW) == {}


async def test_end_users_and_buckets_of_different_workspaces_never_share_a_budget(
    ledger: BudgetLedger,
) -> None:
    other_workspace = "f" * 32
    for scope, name in (("end_user", "alice"), ("bucket", "premium")):
        mine = charge(1_000, scope=scope, subject=name)
        theirs = charge(1_000, scope=scope, subject=name, workspace_id=other_workspace)
        await ledger.settle(await ledger.reserve([mine], 1_000, NOW), 1_000)
        assert await state(ledger, mine) == (1_000, 0)
        assert await state(ledger, theirs) == (0, 0)


async def test_a_very_long_end_user_name_is_still_its_own_budget(ledger: BudgetLedger) -> None:
    long_a = charge(1_000, scope="end_user", subject="a" * 400)
    long_b = charge(1_000, scope="end_user", subject="a" * 399 + "b")
    await ledger.settle(await ledger.reserve([long_a], 1_000, NOW), 1_000)
    assert await state(ledger, long_a) == (1_000, 0)
    assert await state(ledger, long_b) == (0, 0)


async def test_no_charges_means_nothing_to_hold(ledger: BudgetLedger) -> None:
    reservation = await ledger.reserve([], 10**9, NOW)
    assert reservation.ok and reservation.held == ()
    assert (await ledger.settle(reservation, 10**9)).soft_limits == ()


async def test_bad_input_is_refused_with_a_clear_error(ledger: BudgetLedger) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        await ledger.reserve([charge(1_000)], -1, NOW)
    with pytest.raises(ValueError, match="unknown budget scope"):
        await ledger.reserve([charge(1_000, scope="team")], 1, NOW)
    with pytest.raises(ValueError, match="unknown time zone"):
        await ledger.reserve([charge(1_000, timezone="Nowhere/Land")], 1, NOW)
    reservation = await ledger.reserve([charge(1_000)], 1, NOW)
    with pytest.raises(ValueError, match="non-negative integer"):
        await ledger.settle(reservation, -5)
    assert isinstance(reservation, Reservation) and reservation.ok


def test_money_rounds_up_for_holds_and_half_up_for_settlements() -> None:
    from decimal import Decimal

    assert reserve_micros(Decimal("0.0000001")) == 1
    assert reserve_micros(Decimal("1.5")) == 1_500_000
    assert settle_micros(Decimal("0.0000005")) == 1
    assert settle_micros(Decimal("0.00000049")) == 0
    assert settle_micros(Decimal("0.0123455")) == 12_346


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="on_redis_error"):
        BudgetPolicy(on_redis_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="redis_timeout"):
        BudgetPolicy(redis_timeout=0)
