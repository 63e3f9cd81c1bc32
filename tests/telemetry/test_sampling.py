"""The per-minute sampler keeps a bounded number of events however fast they come."""

from __future__ import annotations

from telemetry.sampling import PerMinuteSampler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_takes_the_bucket_then_one_event_per_interval() -> None:
    clock = Clock()
    sampler = PerMinuteSampler(6, clock=clock)
    assert sum(sampler.take() for _ in range(1000)) == 6
    clock.now += 9.9  # one token every 10 s
    assert not sampler.take()
    clock.now += 0.1
    assert sampler.take()
    assert not sampler.take()


def test_a_flood_keeps_at_most_the_rate_over_its_duration() -> None:
    clock = Clock()
    sampler = PerMinuteSampler(30, clock=clock)
    kept = 0
    for _ in range(600_000):  # 10,000 events a second for a minute
        clock.now += 0.0001
        kept += sampler.take()
    assert 59 <= kept <= 60  # the bucket, then the minute's refill (float rounding: +-1)


def test_an_idle_bucket_refills_only_to_its_size() -> None:
    clock = Clock()
    sampler = PerMinuteSampler(2, clock=clock)
    clock.now += 3600
    assert [sampler.take() for _ in range(4)] == [True, True, False, False]
