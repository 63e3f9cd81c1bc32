"""The recorder's backpressure: one line, let go at the writer's pace, first come first served."""

from __future__ import annotations

import asyncio

import pytest

from telemetry.backpressure import Backpressure, BatchProgress


class Clock:
    """The writer's clock (the pacer's timer keeps the event loop's)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Queue:
    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


MARK = 1000


def writing_at_1800_a_second(clock: Clock, queue: Queue) -> Backpressure:
    """Past the mark by 100 (the line moves at 0.8 of the rate), after the writer retired 900
    bundles in half a second."""
    backpressure = Backpressure(MARK, queue, clock=clock)
    backpressure.filled()
    assert backpressure.congested
    backpressure.taken(1000)
    backpressure.retired(1)
    clock.now += 0.5
    backpressure.retired(900)
    assert len(queue) + backpressure.owed == MARK + 100
    assert backpressure.writing_rate(clock.now) == pytest.approx(1800)
    return backpressure


async def hold(
    backpressure: Backpressure, count: int, limit: float = 10.0
) -> list[asyncio.Task[None]]:
    held = [asyncio.create_task(backpressure.room(limit)) for _ in range(count)]
    await asyncio.sleep(0.05)
    return held


async def let_time_pass(clock: Clock, seconds: float) -> None:
    """`seconds` on the writer's clock, seen by the pacer's next go."""
    clock.now += seconds
    await asyncio.sleep(0.05)


def gone(held: list[asyncio.Task[None]]) -> list[int]:
    return [i for i, task in enumerate(held) if task.done()]


async def test_below_the_mark_nobody_waits() -> None:
    queue = Queue(MARK)
    backpressure = Backpressure(MARK, queue)
    backpressure.filled()
    assert not backpressure.congested
    await asyncio.wait_for(backpressure.room(10), 1)


async def test_held_requests_go_in_arrival_order_at_the_writers_pace() -> None:
    clock, queue = Clock(), Queue(1001)
    backpressure = writing_at_1800_a_second(clock, queue)
    held = await hold(backpressure, 12)
    assert gone(held) == []  # no time has passed on the writer's clock

    await let_time_pass(clock, 0.002)  # 1800/s x 0.8 x 2 ms = 2.9 turns
    assert gone(held) == [0, 1]
    await let_time_pass(clock, 0.002)  # 0.9 saved + 2.9 = 3.8
    assert gone(held) == [0, 1, 2, 3, 4]
    await let_time_pass(clock, 0.01)
    assert gone(held) == list(range(12))


async def test_the_line_stops_half_the_mark_past_it() -> None:
    clock, queue = Clock(), Queue(1001)
    backpressure = writing_at_1800_a_second(clock, queue)
    queue.length += 400  # 500 past the mark
    held = await hold(backpressure, 4)
    await let_time_pass(clock, 0.05)
    assert gone(held) == []
    queue.length -= 250  # 250 past: half the pace
    await let_time_pass(clock, 0.002)  # 1800/s x 0.5 x 2 ms = 1.8 turns
    assert gone(held) == [0]


async def test_everyone_goes_once_the_backlog_is_under_the_mark() -> None:
    clock, queue = Clock(), Queue(1001)
    backpressure = writing_at_1800_a_second(clock, queue)
    held = await hold(backpressure, 40)
    backpressure.retired(99)  # nothing owed: the queue alone, 1001, is still past the mark
    await asyncio.sleep(0.01)
    assert gone(held) == []
    queue.length = MARK
    backpressure.retired(0)
    await asyncio.sleep(0.01)
    assert gone(held) == list(range(40))
    assert not backpressure.congested


async def test_a_writer_that_writes_nothing_lets_nobody_go_before_the_limit() -> None:
    clock, queue = Clock(), Queue(MARK + 1)
    backpressure = Backpressure(MARK, queue, clock=clock)
    backpressure.filled()
    held = await hold(backpressure, 3, limit=0.2)
    await let_time_pass(clock, 5.0)
    assert gone(held) == []
    await asyncio.wait_for(asyncio.gather(*held), 5)  # the limit: each goes on, none fails


async def test_a_request_that_stops_waiting_gives_its_turn_to_the_next() -> None:
    clock, queue = Clock(), Queue(1001)
    backpressure = writing_at_1800_a_second(clock, queue)
    held = await hold(backpressure, 4)
    held[0].cancel()
    held[1].cancel()
    await let_time_pass(clock, 0.002)
    assert [task.cancelled() for task in held] == [True, True, False, False]
    assert gone(held) == [0, 1, 2, 3]


async def test_the_rate_is_the_last_half_second_of_writing() -> None:
    clock, queue = Clock(), Queue(MARK + 1)
    backpressure = Backpressure(MARK, queue, clock=clock)
    assert backpressure.writing_rate(clock.now) == 0
    backpressure.taken(10_000)
    for _ in range(20):  # 100 bundles every 0.1 s: 1,000 a second
        clock.now += 0.1
        backpressure.retired(100)
    assert backpressure.writing_rate(clock.now) == pytest.approx(1000, rel=0.25)
    clock.now += 0.5  # then nothing for half a second
    assert backpressure.writing_rate(clock.now) == pytest.approx(0, abs=250)


async def test_a_writer_back_from_a_long_idle_spell_is_measured_by_its_last_half_second() -> None:
    clock, queue = Clock(), Queue(MARK + 1)
    backpressure = Backpressure(MARK, queue, clock=clock)
    backpressure.taken(10_000)
    backpressure.retired(100)
    clock.now += 600  # ten minutes without a batch
    backpressure.retired(500)
    clock.now += 0.1
    backpressure.retired(500)
    assert backpressure.writing_rate(clock.now) == pytest.approx(2000)


def test_a_batch_counts_against_the_mark_until_its_progress_is_reported() -> None:
    queue = Queue(0)
    backpressure = Backpressure(MARK, queue)
    backpressure.taken(300)
    progress = BatchProgress(backpressure, 300)
    progress(0.5)
    assert backpressure.owed == 150
    progress(0.25)  # progress never goes back
    assert backpressure.owed == 150
    progress.finish()
    assert backpressure.owed == 0
    progress.finish()
    assert backpressure.owed == 0
