"""The paths requests took through the gateway, counted: the rules that matched, the deployment
selected, its provider, and how the request ended.

One grouped query over the traces' summary columns (written by the recorder with each trace),
never over the decisions themselves: a path is read off one row per request. The query reads the
newest `sample` requests of the range at most, through the time index, so its cost is bounded
whatever the range; `capped` says when it stopped there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.schema import traces
from telemetry.search import TraceFilter, trace_conditions

PATH_SAMPLE: Final = 100_000
"""Requests read at most, newest first."""
PATH_GROUPS: Final = 1_000
"""Distinct paths fetched at most; the total still counts every request read."""
TOP_PATHS: Final = 12


@dataclass(frozen=True, slots=True)
class RequestPath:
    rules: tuple[str, ...]
    """The ids of the rules that matched, in the order they were evaluated."""
    deployment: str | None
    provider: str | None
    status: str
    error_type: str | None
    cache_hit: bool
    requests: int

    @property
    def outcome(self) -> str:
        """How the request ended, in a few words: `ok`, `ok · cache hit`,
        `error · upstream_timeout`, `denied · rate_limit_exceeded`, `cancelled`."""
        if self.cache_hit and self.status == "ok":
            return "ok · cache hit"
        if self.error_type and self.status != "ok":
            return f"{self.status} · {self.error_type}"
        return self.status


@dataclass(frozen=True, slots=True)
class PathCounts:
    paths: list[RequestPath]
    """The most taken paths, most first."""
    every: list[RequestPath]
    """Every path fetched (at most `PATH_GROUPS`), most taken first."""
    requests: int
    """Requests counted, in every path."""
    other_paths: int
    """Paths taken but not among `paths`."""
    other_requests: int
    capped: bool


def _rules(value: Any) -> tuple[str, ...]:
    return tuple(str(rule) for rule in value) if isinstance(value, list) else ()


async def request_paths(
    engine: AsyncEngine,
    filters: TraceFilter,
    *,
    scope: str | None,
    top: int = TOP_PATHS,
    sample: int = PATH_SAMPLE,
) -> PathCounts:
    """The paths of the requests `search_traces` lists for `filters`, most taken first."""
    t = traces.c
    path = (t.rules_matched, t.deployment, t.provider, t.status, t.error_type, t.cache_hit)
    recent = (
        sa.select(*path)
        .where(*trace_conditions(filters, scope, engine.dialect.name))
        .order_by(t.started_at.desc())
        .limit(sample)
        .subquery("recent")
    )
    columns = [recent.c[column.key] for column in path]
    requests = sa.func.count().label("requests")
    statement = (
        sa.select(*columns, requests, sa.func.sum(sa.func.count()).over().label("everything"))
        .group_by(*columns)
        .order_by(requests.desc())
        .limit(PATH_GROUPS)
    )
    async with engine.connect() as conn:
        found = (await conn.execute(statement)).all()
    everything = int(found[0].everything) if found else 0
    merged: dict[tuple[Any, ...], int] = {}
    for row in found:
        key = (_rules(row.rules_matched), *row[1:6])
        merged[key] = merged.get(key, 0) + int(row.requests)
    ranked = sorted(merged.items(), key=lambda item: -item[1])
    every = [
        RequestPath(
            rules=rules,
            deployment=deployment,
            provider=provider,
            status=status,
            error_type=error_type,
            cache_hit=bool(cache_hit),
            requests=count,
        )
        for (rules, deployment, provider, status, error_type, cache_hit), count in ranked
    ]
    paths = every[:top]
    shown = sum(path.requests for path in paths)
    return PathCounts(
        paths=paths,
        every=every,
        requests=everything,
        other_paths=max(len(ranked) - top, 0),
        other_requests=everything - shown,
        capped=everything >= sample,
    )
