"""The demo history, simulated in time order: budgets and rate limits carry over from one
minute to the next."""

from __future__ import annotations

import random
from itertools import accumulate

from gateway.demo.admission import Ledger, RequestCounter, charges_of
from gateway.demo.cast import Cast, Key
from gateway.demo.ids import DemoIds
from gateway.demo.requests import Request
from gateway.demo.rhythm import Rhythm
from gateway.demo.rules import DemoRules
from telemetry.records import TraceBundle


class Simulator:
    """The history's requests, minute by minute in time order, and what they share: budgets
    spent, requests counted against rpm limits, rule evaluations.

    Each hour's requests are drawn from a generator seeded with the seed, the history's span
    and size, and the hour: the history is the same however its minutes are asked for (in
    order), and another history, even with the same seed, draws other ids.
    """

    def __init__(self, cast: Cast, rhythm: Rhythm, seed: int) -> None:
        self.cast = cast
        self.rhythm = rhythm
        self.ledger = Ledger()
        self.counter = RequestCounter()
        self.charges = {key.key_id: charges_of(key) for key in cast.keys}
        self.model_choices = {
            key.key_id: (list(accumulate(w for _, w in key.models)), [m for m, _ in key.models])
            for key in cast.keys
        }
        self.rules = DemoRules(cast.rules)
        requests = sum(rhythm.counts) + sum(rhythm.bursts.values())
        self._stream = f"{seed}:{rhythm.start_minute}:{rhythm.minutes}:{requests}"
        self._last_micros = 0
        self._next_minute = 0
        self._hour = -1
        self._rng = random.Random()
        self._ids = DemoIds(self._rng)

    def requests_in(self, offset: int) -> int:
        """How many requests start in minute `offset` of the history."""
        return self.rhythm.counts[offset] + self.rhythm.bursts.get(offset, 0)

    def minutes(self, offsets: range) -> list[TraceBundle]:
        """The requests that start in these minutes of the history (offsets from its first
        minute, following on from the previous call), in time order."""
        if offsets.start != self._next_minute:
            raise ValueError(f"minutes are made in order: {self._next_minute} is next")
        rhythm = self.rhythm
        bundles: list[TraceBundle] = []
        for offset in offsets:
            if offset // 60 != self._hour:
                self._hour = offset // 60
                self._rng = random.Random(f"steerway-demo-traffic:{self._stream}:{self._hour}")
                self._ids = DemoIds(self._rng)
            rng, ids = self._rng, self._ids
            count = rhythm.counts[offset]
            burst = rhythm.bursts.get(offset, 0)
            if not count and not burst:
                continue
            minute = rhythm.start_minute + offset
            chooser = rhythm.key_chooser(minute)
            arrivals: list[tuple[float, Key | None]] = [(rng.random(), None) for _ in range(count)]
            arrivals += [(rng.random(), rhythm.bursting) for _ in range(burst)]
            arrivals.sort(key=lambda arrival: arrival[0])
            for fraction, key in arrivals:
                micros = minute * 60_000_000 + int(fraction * 60_000_000)
                micros = max(micros, self._last_micros + 1)
                self._last_micros = micros
                if key is None:
                    key = rhythm.pick_key(chooser, rng.random())
                bundles.append(Request(self, rng, ids, key, micros).run())
        self._next_minute = offsets.stop
        return bundles
