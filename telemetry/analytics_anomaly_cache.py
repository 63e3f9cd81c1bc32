"""Anomaly reports kept for a few minutes, so that a page viewed again, a second panel of the
same question, or an alert evaluating every minute does not score five weeks of hours again.

A report covers whole hours that are over (`analytics_anomalies.shown_range`): its numbers only
change when rows arrive late for those hours, which the recorder writes within seconds. So a
report is kept for `TTL` seconds, or until the hour turns (the range then ends an hour later and
is another question). Requests for a report being computed wait for that computation instead of
starting their own. At most `SIZE` reports are kept, the least recently used going first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics_anomalies import (
    DEFAULT_TOP,
    GROUP_DIMENSIONS,
    KIND_METRICS,
    AnomalyReport,
    detect_anomalies,
    shown_range,
)
from telemetry.anomalies import DEFAULT_OPTIONS, Options

TTL: Final = 300.0
SIZE: Final = 16

_reports: OrderedDict[tuple[object, ...], tuple[float, asyncio.Future[AnomalyReport]]] = (
    OrderedDict()
)


def clear() -> None:
    _reports.clear()


async def cached_anomalies(
    engine: AsyncEngine,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    kinds: Sequence[str] = tuple(KIND_METRICS),
    dimensions: Sequence[str | None] = GROUP_DIMENSIONS,
    top: int = DEFAULT_TOP,
    filters: Mapping[str, tuple[str, ...]] | None = None,
    scope: str | None,
    options: Options = DEFAULT_OPTIONS,
) -> AnomalyReport:
    """`detect_anomalies` with the same arguments, answered from a recent report when there is
    one."""
    first, last = shown_range(start, end, now)
    key = (
        id(asyncio.get_running_loop()),
        str(engine.url),
        scope,
        first,
        last,
        tuple(kinds),
        tuple(dimensions),
        top,
        tuple(sorted((name, tuple(values)) for name, values in (filters or {}).items())),
        options,
    )
    moment = time.monotonic()
    kept = _reports.get(key)
    if kept is not None and kept[0] > moment and not _failed(kept[1]):
        _reports.move_to_end(key)
        return await asyncio.shield(kept[1])
    future: asyncio.Future[AnomalyReport] = asyncio.ensure_future(
        detect_anomalies(
            engine,
            start=first,
            end=last,
            now=now,
            kinds=kinds,
            dimensions=dimensions,
            top=top,
            filters=filters,
            scope=scope,
            options=options,
        )
    )
    _reports[key] = (moment + TTL, future)
    while len(_reports) > SIZE:
        _reports.popitem(last=False)
    try:
        return await asyncio.shield(future)
    except Exception:
        _reports.pop(key, None)
        raise


def _failed(future: asyncio.Future[AnomalyReport]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)
