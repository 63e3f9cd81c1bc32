"""Silences in the database: made, read, listed by state newest first a page at a time, and
expired early; and the active ones of every workspace at once, for an evaluation round."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.silence import Silence, matchers_from_rows
from telemetry.db import as_utc
from telemetry.schema import silences

State = Literal["active", "pending", "expired"]
STATES: Final[tuple[State, ...]] = ("active", "pending", "expired")


class AlreadyExpired(Exception):
    """The silence has already ended."""


@dataclass(frozen=True, slots=True)
class SilenceFilter:
    workspace_ids: frozenset[str] | None
    """None: every workspace."""
    state: State | None = None
    cursor: str | None = None
    """The last silence id of the previous page."""
    limit: int = 50


def _utc(value: datetime) -> datetime:
    found = as_utc(value)
    assert found is not None
    return found


def _silence(row: sa.RowMapping) -> Silence:
    return Silence(
        silence_id=row["silence_id"],
        workspace_id=row["workspace_id"],
        matchers=matchers_from_rows(row["matchers"]),
        starts_at=_utc(row["starts_at"]),
        ends_at=_utc(row["ends_at"]),
        comment=row["comment"],
        created_by=row["created_by"],
        created_at=_utc(row["created_at"]),
    )


async def create_silence(engine: AsyncEngine, silence: Silence) -> Silence:
    async with engine.begin() as connection:
        await connection.execute(
            silences.insert().values(
                silence_id=silence.silence_id,
                workspace_id=silence.workspace_id,
                matchers=[matcher.data() for matcher in silence.matchers],
                starts_at=silence.starts_at,
                ends_at=silence.ends_at,
                comment=silence.comment,
                created_by=silence.created_by,
                created_at=silence.created_at,
            )
        )
    return silence


async def get_silence(engine: AsyncEngine, silence_id: str) -> Silence | None:
    select = sa.select(silences).where(silences.c.silence_id == silence_id)
    async with engine.connect() as connection:
        row = (await connection.execute(select)).mappings().first()
    return None if row is None else _silence(row)


def _in_state(state: State, now: datetime) -> sa.ColumnElement[bool]:
    table = silences
    if state == "pending":
        return table.c.starts_at > now
    if state == "active":
        return sa.and_(table.c.starts_at <= now, table.c.ends_at > now)
    return table.c.ends_at <= now


async def list_silences(
    engine: AsyncEngine, query: SilenceFilter, now: datetime
) -> tuple[list[Silence], bool]:
    """A page of silences, newest first, and whether more follow."""
    table = silences
    select = sa.select(table).order_by(table.c.silence_id.desc()).limit(query.limit + 1)
    if query.workspace_ids is not None:
        select = select.where(table.c.workspace_id.in_(sorted(query.workspace_ids)))
    if query.state is not None:
        select = select.where(_in_state(query.state, now))
    if query.cursor is not None:
        select = select.where(table.c.silence_id < query.cursor)
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_silence(row) for row in rows[: query.limit]], len(rows) > query.limit


async def expire_silence(engine: AsyncEngine, silence_id: str, now: datetime) -> Silence:
    """End the silence at `now` (a pending one also starts then, so it never was in force);
    `AlreadyExpired` when it has ended. The check and the change are one statement."""
    table = silences
    async with engine.begin() as connection:
        changed = await connection.execute(
            table.update()
            .where(table.c.silence_id == silence_id, table.c.ends_at > now)
            .values(
                ends_at=now,
                starts_at=sa.case((table.c.starts_at > now, now), else_=table.c.starts_at),
            )
        )
        if changed.rowcount != 1:
            raise AlreadyExpired(silence_id)
    found = await get_silence(engine, silence_id)
    assert found is not None
    return found


async def active_silences(
    engine: AsyncEngine, now: datetime, workspace_id: str | None = None
) -> dict[str, list[Silence]]:
    """The silences in force at `now`, by workspace (one workspace's when given): one query for
    a whole evaluation round."""
    select = sa.select(silences).where(_in_state("active", now))
    if workspace_id is not None:
        select = select.where(silences.c.workspace_id == workspace_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    found: dict[str, list[Silence]] = defaultdict(list)
    for row in rows:
        found[row["workspace_id"]].append(_silence(row))
    return dict(found)
