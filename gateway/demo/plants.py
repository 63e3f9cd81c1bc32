"""Two incidents planted in the demo history for the anomaly detector (and whoever looks at the
console) to find:

- a cost spike: Globex's `eval-harness` key sends ten times its usual traffic (GPT-4.1 and
  Claude Sonnet, the expensive models) for three hours, starting between 09:00 and 12:00 on a
  weekday in Globex's own clock, as an evaluation suite re-run in a loop would;
- a latency regression: every answer from Anthropic takes three times as long (time to first
  token and generation alike) for six hours, starting between 10:00 and 14:00 UTC on a weekday,
  while most workspaces are awake.

Where they go follows the history's length: when it spans 15 days or more, both begin after
its first 14 days, so two weeks of the same hours precede them for a baseline by hour of week;
a shorter history gets them in its second half (a detector then compares with the same hour of
earlier days). The latency regression keeps at least a day from the spike when it can, never
overlaps it, and both lie wholly inside the history. The exact hours are drawn from the seed and
the history's span: the same options plant them in the same place.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.demo.cast import Cast

COST_SPIKE = "cost_spike"
LATENCY_REGRESSION = "latency_regression"

SPIKE_KEY = "eval-harness"
SPIKE_FACTOR = 10.0
SPIKE_HOURS = 3
SPIKE_LOCAL_STARTS = range(9, 13)
SLOW_PROVIDER = "anthropic"
SLOW_FACTOR = 3.0
SLOW_HOURS = 6
SLOW_UTC_STARTS = range(10, 15)
BASELINE_DAYS = 14
"""Days of history before the plants, when the history has room for them and a day more."""


@dataclass(frozen=True, slots=True)
class Plant:
    kind: str  # COST_SPIKE or LATENCY_REGRESSION
    start: datetime  # UTC, on the hour
    end: datetime  # exclusive
    factor: float  # traffic (a spike) or latency (a regression) times this
    workspace: str | None = None  # the spike's workspace slug
    workspace_id: str | None = None
    key: str | None = None  # the spike's key name
    key_id: str | None = None
    provider: str | None = None  # the regression's provider

    @property
    def start_minute(self) -> int:
        return int(self.start.timestamp()) // 60

    @property
    def end_minute(self) -> int:
        return int(self.end.timestamp()) // 60

    def describe(self) -> str:
        window = f"{self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC"
        if self.kind == COST_SPIKE:
            return (
                f"a cost spike, key {self.key} of {self.workspace} sending {self.factor:g}x its "
                f"traffic, {window}"
            )
        return f"a latency regression, {self.provider} {self.factor:g}x slower, {window}"


def plan_plants(cast: Cast, seed: int, start_minute: int, minutes: int) -> tuple[Plant, ...]:
    """The plants of the history of `minutes` minutes from epoch minute `start_minute`."""
    rng = random.Random(f"steerway-demo-plants:{seed}:{start_minute}:{minutes}")
    stop_hour = (start_minute + minutes) // 60
    first_hour = -(-start_minute // 60)
    earliest = start_minute + (
        BASELINE_DAYS * 1440 if minutes >= (BASELINE_DAYS + 1) * 1440 else minutes // 2
    )
    first_hour = max(first_hour, -(-earliest // 60))
    key = next((k for k in cast.keys if k.name == SPIKE_KEY), None)
    plants: list[Plant] = []
    spike_hours: range | None = None
    if key is not None:
        offset = key.workspace.utc_offset_hours
        begin = _choose(
            rng,
            first_hour,
            stop_hour - SPIKE_HOURS,
            [
                lambda hour: _weekday(hour + offset) and (hour + offset) % 24 in SPIKE_LOCAL_STARTS,
                lambda hour: True,
            ],
        )
        if begin is not None:
            spike_hours = range(begin, begin + SPIKE_HOURS)
            plants.append(
                Plant(
                    COST_SPIKE,
                    _at(begin),
                    _at(begin + SPIKE_HOURS),
                    SPIKE_FACTOR,
                    workspace=key.workspace.slug,
                    workspace_id=key.workspace.workspace_id,
                    key=key.name,
                    key_id=key.key_id,
                )
            )
    if SLOW_PROVIDER in cast.providers:

        def apart(margin: int) -> Callable[[int], bool]:
            if spike_hours is None:
                return lambda hour: True
            return lambda hour: (
                hour + SLOW_HOURS + margin <= spike_hours.start or hour >= spike_hours.stop + margin
            )

        def awake(hour: int) -> bool:
            return _weekday(hour) and hour % 24 in SLOW_UTC_STARTS

        begin = _choose(
            rng,
            first_hour,
            stop_hour - SLOW_HOURS,
            [
                lambda hour: awake(hour) and apart(24)(hour),
                lambda hour: awake(hour) and apart(0)(hour),
                apart(0),
            ],
        )
        if begin is not None:
            plants.append(
                Plant(
                    LATENCY_REGRESSION,
                    _at(begin),
                    _at(begin + SLOW_HOURS),
                    SLOW_FACTOR,
                    provider=SLOW_PROVIDER,
                )
            )
    return tuple(plants)


def _choose(
    rng: random.Random, first: int, last: int, wishes: list[Callable[[int], bool]]
) -> int | None:
    """An hour in [first, last] meeting the first wish that any hour meets; None when none
    does."""
    hours = range(first, last + 1)
    for wish in wishes:
        fitting = [hour for hour in hours if wish(hour)]
        if fitting:
            return rng.choice(fitting)
    return None


def _weekday(hour: int) -> bool:
    return (hour // 24 + 3) % 7 < 5  # 1970-01-01 was a Thursday; Monday = 0


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)
