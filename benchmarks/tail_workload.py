"""What the tail benchmark runs: Steerways configured as in production, and their event-loop lag.

Each Steerway has the 50-rule fixture, a virtual key with an in-process rate limit and budget far
above the load (every request is checked, none refused), guardrails defined but not selected by
the key, and telemetry on; per store (SQLite, Postgres): `steerway serve` (uvicorn with
httptools and uvloop), granian on the same app factory, and `steerway serve` with the recorder
writing from a child process (`telemetry.writer: process`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from benchmarks.histograms import Histogram, read_histogram
from benchmarks.limits_workload import BUDGET_OPTIONS, RATE_OPTIONS, RPM, probe
from benchmarks.rules_workload import (
    GATEWAY_HEADERS,
    REQUESTED_MODEL,
    RULE_MODELS,
    fixture_references,
    load_fixture,
)
from benchmarks.stores import sum_samples
from benchmarks.targets import PLAIN_MODEL, STREAM_MODEL, Route, SteerwayOptions, Target

KEY: Final = "tail"
KEY_OPTIONS: Final = (*RATE_OPTIONS, *BUDGET_OPTIONS)
LAG_HISTOGRAM: Final = "steerway_event_loop_lag_seconds"
LAG_WORST: Final = "steerway_event_loop_lag_max_seconds"
SERVERS: Final = ("uvicorn", "granian")
VARIANTS: Final = (("uvicorn", "inline"), ("granian", "inline"), ("uvicorn", "process"))
"""(server, `telemetry.writer`) of each Steerway the scenario runs per store."""


@dataclass(frozen=True)
class Store:
    label: str
    database_url: str | None
    """None: a fresh SQLite file of the instance."""


def variant_name(store: Store, server: str, writer: str = "inline") -> str:
    return (
        f"steerway-{store.label}"
        + ("" if server == "uvicorn" else f"-{server}")
        + ("" if writer == "inline" else f"-{writer}")
    )


def tail_options(store: Store, server: str, writer: str = "inline") -> SteerwayOptions:
    config = fixture_references()
    if writer != "inline":
        config["telemetry"] = {"writer": writer}
    return SteerwayOptions(
        name=variant_name(store, server, writer),
        database_url=store.database_url,
        models=RULE_MODELS,
        rules=tuple(load_fixture()),
        config=config,
        keys={KEY: KEY_OPTIONS},
        server=server,
    )


def keyed_target(started: Target) -> Target:
    """The instance's routes with the limited key; the plain load carries the rules' headers."""
    url = started.route(PLAIN_MODEL).url
    auth = {"Authorization": f"Bearer {started.keys[KEY].plaintext}"}
    return dataclasses.replace(
        started,
        routes={
            REQUESTED_MODEL: Route(url, {**auth, **GATEWAY_HEADERS}),
            STREAM_MODEL: Route(url, auth),
        },
    )


def check_configured(target: Target) -> str | None:
    """Why a probe shows the instance does not run what the scenario claims (None: it does)."""
    body = {
        "model": REQUESTED_MODEL,
        "messages": [{"role": "user", "content": "hello tail probe"}],
        "max_tokens": 16,
    }
    status, headers = probe(target.route(REQUESTED_MODEL), body)
    if status != 200:
        return f"probe answered HTTP {status}"
    if headers.get("x-ratelimit-limit-requests") != RPM:
        return "probe: the key's rate limit is not applied"
    if not headers.get("x-steerway-rules"):
        return "probe: no steering rule matched"
    if headers.get("x-steerway-guardrails"):
        return "probe: a guardrail ran on a key that selects none"
    return None


def load_model(target: Target) -> str:
    """The model the plain load asks for: the rules' model on a tail Steerway, else the bench's."""
    return REQUESTED_MODEL if REQUESTED_MODEL in target.routes else PLAIN_MODEL


@dataclass(frozen=True)
class LagWindow:
    """Event-loop lag observed between two scrapes of one worker's `/metrics`."""

    wakeups: float
    worst_upper_ms: float
    """The bucket bound under which every wake-up of the window fell: max lag <= this."""
    over_20ms: float
    """Wake-ups that came more than 20 ms late."""


def lag_histogram(exposition: str | None) -> Histogram | None:
    return None if exposition is None else read_histogram(exposition, LAG_HISTOGRAM)


def lag_window(before: Histogram | None, after: Histogram | None) -> LagWindow | None:
    if before is None or after is None:
        return None
    earlier: Mapping[float, float] = dict(before.buckets)
    increase = [(bound, count - earlier.get(bound, 0.0)) for bound, count in after.buckets]
    total = increase[-1][1]
    if total <= 0:
        return None
    worst = next(bound for bound, count in increase if count >= total)
    within_20 = next((count for bound, count in increase if bound == 0.02), 0.0)
    return LagWindow(wakeups=total, worst_upper_ms=worst * 1000, over_20ms=total - within_20)


def worst_lag_ms(exposition: str | None) -> float | None:
    value = None if exposition is None else sum_samples(exposition, LAG_WORST)
    return None if value is None else value * 1000


def lag_values(before: str | None, after: str | None) -> dict[str, float]:
    """A load's lag figures from `/metrics` read just before and just after it: the bucket
    bound of its worst wake-up, its wake-ups over 20 ms, and the worst since the worker began."""
    values: dict[str, float] = {}
    window = lag_window(lag_histogram(before), lag_histogram(after))
    if window is not None:
        values |= {"lag_ms": window.worst_upper_ms, "lag_over_20": window.over_20ms}
    worst = worst_lag_ms(after)
    if worst is not None:
        values["lag_worst_since_start_ms"] = worst
    return values
