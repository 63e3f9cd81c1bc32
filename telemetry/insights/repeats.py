"""Identical requests paid for more than once: what the cache would have saved.

Two provider calls are the same request when they asked the same (requested) model with the same
stored prompt: the chat messages, or an embedding's input, as recorded. The fingerprint is the
prompt's stored JSON text (its MD5 on Postgres, where JSONB writes it in one canonical form),
grouped in the database over the range, so only the groups come back. Requests whose prompt was
not stored (content storage off, or sampled out) cannot be compared: they are counted and said
to be skipped. Parameters other than the model and the messages (temperature, tools) are not
part of what is stored with the prompt, so a group may mix them: a sampled answer
(temperature above 0) may be meant to differ each time.

The first call of a group had to be paid; the others are the repeats, and what caching would
have saved is their cost: the group's cost less one call at its mean cost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import sqlalchemy as sa

from telemetry.insights.scope import InsightScope, money_sum
from telemetry.schema import ai_interactions

DEFAULT_TOP: Final = 20


@dataclass(frozen=True, slots=True)
class RepeatGroup:
    fingerprint: str
    """A short hash of the model and the prompt, stable across backends."""
    requested_model: str
    requests: int
    repeats: int
    cost: Decimal | None
    saving: Decimal | None
    first_seen: datetime
    last_seen: datetime
    example_traces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Repeats:
    groups: tuple[RepeatGroup, ...]
    compared: int
    """Uncached, answered calls whose prompt was stored, in the range."""
    skipped: int
    """Calls without a stored prompt: they could not be compared."""
    repeats: int
    """Repeats in every group found (not only those shown)."""
    saving: Decimal
    """What caching every repeat found would have saved."""
    more_groups: int
    """Groups found beyond those shown."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fingerprint_key(dialect: str) -> sa.ColumnElement[str]:
    text = sa.cast(ai_interactions.c.prompt, sa.Text)
    return sa.func.md5(text) if dialect == "postgresql" else text


def fingerprint(model: str, key: str) -> str:
    return hashlib.sha256(f"{model}\n{key}".encode()).hexdigest()[:16]


async def find_repeats(scope: InsightScope, *, top: int = DEFAULT_TOP) -> Repeats:
    i = ai_interactions.c
    base = [*scope.interactions_where(), i.status == "ok", i.cache_hit.is_(False)]
    key = _fingerprint_key(scope.engine.dialect.name).label("key")
    count = sa.func.count().label("requests")
    groups = (
        sa.select(
            i.requested_model,
            key,
            count,
            money_sum(i.cost_usd).label("cost"),
            sa.func.count(i.cost_usd).label("priced"),
            sa.func.min(i.started_at).label("first_seen"),
            sa.func.max(i.started_at).label("last_seen"),
            sa.func.min(i.trace_id).label("first_trace"),
            sa.func.max(i.trace_id).label("last_trace"),
        )
        .where(*base, i.prompt.is_not(None))
        .group_by(i.requested_model, key)
        .having(sa.func.count() > 1)
        .subquery()
    )
    shown = sa.select(groups).order_by(groups.c.requests.desc(), groups.c.cost.desc()).limit(top)
    stored = sa.select(
        sa.func.count(i.prompt),
        sa.func.count() - sa.func.count(i.prompt),
    ).where(*base)
    async with scope.engine.connect() as connection:
        rows = (await connection.execute(shown)).all()
        compared, skipped = (await connection.execute(stored)).one()
    group_count, repeat_count, saving_total = await _totals(scope, groups)
    found = []
    for row in rows:
        repeats = int(row.requests) - 1
        saving = None
        if row.cost is not None and row.priced:
            mean = Decimal(row.cost) / row.priced
            saving = mean * repeats
        examples = tuple(dict.fromkeys((row.first_trace, row.last_trace)))
        found.append(
            RepeatGroup(
                fingerprint=fingerprint(row.requested_model, str(row.key)),
                requested_model=row.requested_model,
                requests=int(row.requests),
                repeats=repeats,
                cost=row.cost,
                saving=saving,
                first_seen=_aware(row.first_seen),
                last_seen=_aware(row.last_seen),
                example_traces=examples,
            )
        )
    return Repeats(
        groups=tuple(found),
        compared=int(compared),
        skipped=int(skipped),
        repeats=repeat_count,
        saving=saving_total,
        more_groups=max(group_count - len(found), 0),
    )


async def _totals(scope: InsightScope, groups: sa.Subquery) -> tuple[int, int, Decimal]:
    """Groups, repeats and the saving over every group found, added up here: money is an
    integer count of 1e-10 USD on SQLite, read back right only through its column type."""
    select = sa.select(groups.c.cost, groups.c.priced, groups.c.requests)
    count, repeats, saving = 0, 0, Decimal(0)
    async with scope.engine.connect() as connection:
        async for cost, priced, requests in await connection.stream(select):
            count += 1
            repeats += int(requests) - 1
            if cost is not None and priced:
                saving += Decimal(cost) / priced * (int(requests) - 1)
    return count, repeats, saving
