"""Event-loop lag, measured inside a gateway under load, outside the product.

A gateway started with `PROBE_FOLDER` on its `PYTHONPATH` and `STEERWAY_BENCH_LAG_LOG` set
runs a probe task on its event loop (`benchmarks/lag_probe/sitecustomize.py`): it sleeps 5 ms
over and over and logs how much later than asked each wake-up came, that is how long the loop
was busy with other work. `LagLog.window` reads one load's lags back: the worst is the longest
stall any request could have met.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROBE_FOLDER = Path(__file__).resolve().parent / "lag_probe"
LOG_FLUSH_S = 0.5
"""How often the probe flushes its log: wait this long after a load before reading it."""


@dataclass(frozen=True)
class Lags:
    samples: int
    worst_ms: float
    p99_ms: float
    over_20ms: int


@dataclass(frozen=True)
class LagLog:
    path: Path

    def window(self, start: float, end: float) -> Lags:
        """The probe's lags logged between two Unix times."""
        lags: list[float] = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                stamp, _, value = line.partition(" ")
                try:
                    at, lag = float(stamp), float(value)
                except ValueError:
                    continue
                if start <= at <= end:
                    lags.append(lag)
        if not lags:
            return Lags(0, float("nan"), float("nan"), 0)
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return Lags(len(lags), lags[-1], p99, sum(1 for lag in lags if lag > 20.0))
