"""The event-loop lag probe on a real loop: a loop held by a blocking call shows up as lag."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from telemetry.loop_lag import LoopLagProbe, loop_lag_probe

BLOCK_S = 0.06
INTERVAL_S = 0.005


class Wakeups:
    """The probe's observations, and a way to wait until it has made some number of them."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.worst: list[float] = []
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def observe(self, lag: float) -> None:
        self.lags.append(lag)
        for count, reached in self._waiters:
            if len(self.lags) >= count:
                reached.set()

    async def reach(self, count: int) -> None:
        reached = asyncio.Event()
        self._waiters.append((count, reached))
        if len(self.lags) >= count:
            reached.set()
        await asyncio.wait_for(reached.wait(), timeout=10)


def hold_the_loop() -> None:
    """The stall the probe must see: a synchronous sleep holds the whole loop."""
    time.sleep(BLOCK_S)


async def test_a_blocked_loop_is_seen_as_lag_at_least_as_long_as_the_block() -> None:
    wakeups = Wakeups()
    probe = LoopLagProbe(INTERVAL_S, observe=wakeups.observe, record_worst=wakeups.worst.append)
    probe.start()
    try:
        await wakeups.reach(3)
        hold_the_loop()
        await wakeups.reach(len(wakeups.lags) + 2)
    finally:
        await probe.stop()
    # The probe's sleep was due at most INTERVAL_S after the block began, so it woke at least
    # BLOCK_S - INTERVAL_S late.
    assert probe.worst_s >= BLOCK_S - INTERVAL_S
    assert max(wakeups.lags) == probe.worst_s
    assert wakeups.worst[-1] == probe.worst_s and wakeups.worst == sorted(wakeups.worst)
    assert len(wakeups.lags) == probe.wakeups >= 5
    assert min(wakeups.lags) >= 0.0


async def test_stop_ends_the_probe_and_a_second_start_is_one_task() -> None:
    wakeups = Wakeups()
    probe = LoopLagProbe(INTERVAL_S, observe=wakeups.observe, record_worst=lambda lag: None)
    probe.start()
    probe.start()
    assert [t for t in asyncio.all_tasks() if t.get_name() == "steerway-loop-lag-probe"] != []
    await wakeups.reach(2)
    await probe.stop()
    stopped_at = probe.wakeups
    await asyncio.sleep(INTERVAL_S * 6)
    assert probe.wakeups == stopped_at
    assert [t for t in asyncio.all_tasks() if t.get_name() == "steerway-loop-lag-probe"] == []


async def test_the_lifespan_probe_feeds_the_prometheus_series() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("steerway_event_loop_lag_seconds_count") or 0.0

    before = count()
    async with loop_lag_probe(object()) as probe:
        deadline = time.monotonic() + 10
        while probe.wakeups < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        hold_the_loop()
        seen = probe.wakeups
        while probe.wakeups < seen + 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    assert count() - before == probe.wakeups >= 4
    worst = REGISTRY.get_sample_value("steerway_event_loop_lag_max_seconds")
    assert worst is not None and worst >= probe.worst_s >= BLOCK_S - probe.interval_s


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        LoopLagProbe(0.0)
