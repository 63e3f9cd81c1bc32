"""When the demo requests arrive: a daily and weekly rhythm per workspace, bursts, incidents.

Each key's traffic follows its workspace's clock: busy in office hours, quiet at night, a third
of that at weekends; batch keys run while their workspace sleeps, a load-test key sends bursts
now and then. Every minute gets its share of the requested total (rounded so the minutes add up
to it exactly), with some noise from hour to hour. Incidents are windows in which one provider
fails far more often than usual. The planted anomalies (`gateway.demo.plants`) are here too: a
key sending many times its traffic for a few hours, a provider answering slowly for a few more.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from gateway.demo.cast import BURST_MINUTES, BurstPlan, Cast, Key
from gateway.demo.plants import COST_SPIKE, LATENCY_REGRESSION, Plant

# Activity by local hour, 0 = midnight.
HOURLY = (
    0.10, 0.07, 0.05, 0.05, 0.06, 0.09, 0.18, 0.36, 0.62, 0.86, 0.97, 1.00,
    0.88, 0.94, 1.00, 0.97, 0.90, 0.74, 0.55, 0.43, 0.36, 0.30, 0.22, 0.15,
)  # fmt: skip
NIGHT_SHIFT = tuple(1.0 if 1 <= hour < 5 else 0.04 for hour in range(24))
WEEKEND = 0.32


@dataclass(frozen=True, slots=True)
class Incident:
    provider: str
    start: int  # epoch minute
    end: int  # epoch minute, exclusive
    failure_rate: float
    kind: str  # timeout | overloaded: how the provider fails meanwhile


class Rhythm:
    """How many requests start in each minute, and from which key: `counts` per minute of the
    history for the steady traffic, `bursts` (minute → requests) for the bursting key."""

    def __init__(
        self,
        cast: Cast,
        seed: int,
        start_minute: int,
        minutes: int,
        requests: int,
        bursts: BurstPlan,
        plants: tuple[Plant, ...] = (),
    ):
        self.cast = cast
        self.plants = plants
        spike = next((p for p in plants if p.kind == COST_SPIKE), None)
        self._spike_key = spike.key_id if spike is not None else None
        self._spike = (spike.start_minute, spike.end_minute, spike.factor) if spike else (0, 0, 1.0)
        slow = next((p for p in plants if p.kind == LATENCY_REGRESSION), None)
        self._slow_provider = slow.provider if slow is not None else None
        self._slow = (slow.start_minute, slow.end_minute, slow.factor) if slow else (0, 0, 1.0)
        self.start_minute = start_minute
        self.minutes = minutes
        rng = random.Random(f"steerway-demo-rhythm:{seed}")
        hours = (minutes + 59) // 60
        self._hour_noise = {
            w.workspace_id: [math.exp(rng.gauss(0, 0.18)) for _ in range(hours)]
            for w in cast.workspaces
        }
        self.bursting = next((k for k in cast.keys if k.bursty), None)
        self.bursts: dict[int, int] = {}
        if self.bursting is not None and minutes > BURST_MINUTES:
            for _ in range(bursts.bursts):
                first = rng.randrange(minutes - BURST_MINUTES)
                for offset in range(BURST_MINUTES):
                    share = bursts.size // BURST_MINUTES + (offset < bursts.size % BURST_MINUTES)
                    self.bursts[first + offset] = self.bursts.get(first + offset, 0) + share
        self.incidents = tuple(
            Incident(
                provider=rng.choice(sorted(cast.providers)),
                start=(begin := start_minute + rng.randrange(minutes)),
                end=begin + rng.randint(20, 90),
                failure_rate=rng.uniform(0.25, 0.6),
                kind="timeout" if number % 2 else "overloaded",
            )
            for number in range(1 + minutes // (3 * 1440))
        )
        self.counts = self._spread(requests - sum(self.bursts.values()), rng)

    def key_intensity(self, key: Key, minute: int) -> float:
        workspace = key.workspace
        local = minute + workspace.utc_offset_hours * 60
        hour = (local // 60) % 24
        weekday = ((local // 1440) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        profile = NIGHT_SHIFT if key.night_owl else HOURLY
        value = workspace.share * key.share * profile[hour]
        if weekday >= 5 and not key.night_owl:
            value *= WEEKEND
        if key.key_id == self._spike_key and self._spike[0] <= minute < self._spike[1]:
            value *= self._spike[2]
        return value * self._hour_noise[workspace.workspace_id][(minute - self.start_minute) // 60]

    def key_chooser(self, minute: int) -> tuple[list[float], tuple[Key, ...]]:
        """Cumulative weights of the keys in `minute`, for `pick_key`."""
        keys = self.cast.keys
        return list(accumulate(self.key_intensity(k, minute) for k in keys)), keys

    @staticmethod
    def pick_key(chooser: tuple[list[float], tuple[Key, ...]], draw: float) -> Key:
        cumulative, keys = chooser
        index = bisect_right(cumulative, draw * cumulative[-1])
        return keys[min(index, len(keys) - 1)]

    def incident(self, provider: str, minute: int) -> Incident | None:
        for incident in self.incidents:
            if incident.provider == provider and incident.start <= minute < incident.end:
                return incident
        return None

    def slowdown(self, provider: str, minute: int) -> float:
        """How many times longer `provider` takes to answer in `minute` (a planted regression)."""
        if provider == self._slow_provider and self._slow[0] <= minute < self._slow[1]:
            return self._slow[2]
        return 1.0

    def _spread(self, requests: int, rng: random.Random) -> array[int]:
        """Requests per minute, in proportion to the minute's activity with a little noise,
        rounded so the counts add up to exactly `requests`."""
        weights = [
            sum(self.key_intensity(k, m) for k in self.cast.keys) * rng.uniform(0.85, 1.15)
            for m in range(self.start_minute, self.start_minute + self.minutes)
        ]
        total = sum(weights)
        counts = array("I")
        expected = 0.0
        given = 0
        offset = rng.random()
        for weight in weights[:-1]:
            expected += requests * weight / total
            count = max(0, min(requests - given, math.floor(expected + offset) - given))
            counts.append(count)
            given += count
        counts.append(requests - given)
        return counts
