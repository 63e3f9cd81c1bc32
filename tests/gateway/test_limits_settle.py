"""Settling what an admitted request holds: in place when the limits live in this worker, shielded
from the request's cancellation when giving back waits on something else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.exchange import Exchange
from gateway.limits.admission import Admission, Admitted
from gateway.limits.ratelimit import LimitSubject
from gateway.limits.ratelimit_local import InProcessRateLimiter
from gateway.limits.stage import LimitsStage

ONE_AT_A_TIME = [LimitSubject("key", "k1", max_parallel=1)]


def _exchange(admitted: Admitted) -> Exchange:
    exchange = Exchange("/v1/chat/completions", {})
    exchange.admitted = admitted
    return exchange


async def test_in_process_limits_are_given_back_without_waiting_on_the_loop() -> None:
    limiter = InProcessRateLimiter()
    stage = LimitsStage(Admission(limiter=limiter, ledger=None))
    held = await limiter.acquire(ONE_AT_A_TIME, 10)
    assert not (await limiter.acquire(ONE_AT_A_TIME, 10)).allowed

    settling = stage.settle(_exchange(Admitted(held, None, 10)))
    with pytest.raises(StopIteration):
        settling.send(None)  # done in one step: no task, no turn of the event loop

    assert (await limiter.acquire(ONE_AT_A_TIME, 10)).allowed


class _SlowLimiter:
    """A limiter whose release waits on I/O, like Redis's."""

    releases_in_place = False

    def __init__(self) -> None:
        self.released = asyncio.Event()

    async def release(self, decision: Any, actual_tokens: int | None = None) -> None:
        await asyncio.sleep(0.01)
        self.released.set()


async def test_a_release_that_waits_finishes_even_when_the_request_is_cancelled() -> None:
    limiter = _SlowLimiter()
    stage = LimitsStage(Admission(limiter=limiter, ledger=None))  # type: ignore[arg-type]
    assert not stage.admission.finishes_in_place

    task = asyncio.create_task(stage.settle(_exchange(Admitted(object(), None, 10))))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    await task

    await asyncio.wait_for(limiter.released.wait(), 1.0)
