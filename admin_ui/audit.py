"""The audit log: every change made through the admin API, the console or the CLI, with who made
it, from where, and the object before and after.

`record_change` is called after a store has made a change, or inside the store's transaction
when the caller holds one (users and memberships are written that way, so their rows can never
disagree). Objects are passed as the API shows them, which never includes a key's plaintext or
hash, a password hash or a token; fields with such names are dropped here as well, so a later
caller that passes a raw row cannot write one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.db import as_utc
from telemetry.ids import random_word
from telemetry.schema import audit_log

SECRET_FIELDS: Final = frozenset(
    {
        "key",
        "key_hash",
        "plaintext",
        "password",
        "password_hash",
        "token",
        "token_hash",
        "secret",
        "csrf_token",
    }
)
ACTOR_KINDS: Final = ("user", "key", "cli")
MAX_PAGE: Final = 200


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an email (`user`), a key's name or "master" (`key`), or "cli"."""

    name: str
    kind: str


CLI_ACTOR: Final = Actor("cli", "cli")


class Acting(Protocol):
    """Anything that can say who acts: a request's principal, for one."""

    @property
    def actor(self) -> Actor: ...


@dataclass(frozen=True, slots=True)
class Change:
    audit_id: str
    created_at: datetime
    workspace_id: str | None
    actor: str
    actor_kind: str
    action: str
    target_type: str
    target_id: str
    before: Any
    after: Any
    address: str | None


_order = threading.Lock()
_last: tuple[int, int] = (0, 0)  # milliseconds, sequence within them


def new_audit_id() -> str:
    """A UUIDv7 whose 12 `rand_a` bits count changes within a millisecond, so one process's
    changes sort in the order they were made (plain UUIDv7s made in the same millisecond
    sort at random)."""
    global _last
    with _order:
        millis = time.time_ns() // 1_000_000
        last_millis, sequence = _last
        if millis <= last_millis:
            millis, sequence = last_millis, sequence + 1
            if sequence > 0xFFF:
                millis, sequence = millis + 1, 0
        else:
            sequence = 0
        _last = (millis, sequence)
    value = (
        ((millis & 0xFFFF_FFFF_FFFF) << 80)
        | (0x7 << 76)
        | (sequence << 64)
        | (0b10 << 62)
        | (random_word() & 0x3FFF_FFFF_FFFF_FFFF)
    )
    return f"{value:032x}"


def without_secrets(value: Any) -> Any:
    """A copy of an object for the log: top-level fields that hold secrets dropped."""
    if isinstance(value, Mapping):
        return {name: item for name, item in value.items() if name not in SECRET_FIELDS}
    return value


async def record_change(
    target: AsyncEngine | AsyncConnection,
    *,
    actor: Actor | Acting,
    action: str,
    target_type: str,
    target_id: str,
    workspace_id: str | None,
    before: Any = None,
    after: Any = None,
    address: str | None = None,
) -> str:
    """Write one audit row (in `target`'s transaction when given a connection); its id."""
    who = actor if isinstance(actor, Actor) else actor.actor
    if who.kind not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {who.kind!r}")
    new_id = new_audit_id()
    row = {
        "audit_id": new_id,
        "workspace_id": workspace_id,
        "actor": who.name[:320],
        "actor_kind": who.kind,
        "action": action,
        "target_type": target_type,
        "target_id": target_id[:128],
        "before": without_secrets(before),
        "after": without_secrets(after),
        "address": address[:64] if address else None,
        "created_at": datetime.now(UTC),
    }
    if isinstance(target, AsyncConnection):
        await target.execute(sa.insert(audit_log), [row])
    else:
        async with target.begin() as conn:
            await conn.execute(sa.insert(audit_log), [row])
    return new_id


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What `list_changes` returns. `workspace_ids` None: every workspace and gateway-wide
    changes (an operator's view); otherwise only those workspaces' rows."""

    workspace_ids: Collection[str] | None = None
    workspace_id: str | None = None
    actor: str | None = None
    action: str | None = None
    """An action (`key.create`) or every action of a kind (`key.`)."""
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    """The last `audit_id` of the previous page: this page starts after it (older)."""
    limit: int = 50


async def list_changes(engine: AsyncEngine, query: AuditFilter) -> tuple[list[Change], bool]:
    """Newest first, one page; and whether more follow."""
    conditions: list[sa.ColumnElement[bool]] = []
    if query.workspace_ids is not None:
        conditions.append(audit_log.c.workspace_id.in_(list(query.workspace_ids)))
    if query.workspace_id is not None:
        conditions.append(audit_log.c.workspace_id == query.workspace_id)
    if query.actor is not None:
        conditions.append(audit_log.c.actor == query.actor)
    if query.action is not None:
        if query.action.endswith("."):
            conditions.append(audit_log.c.action.startswith(query.action, autoescape=True))
        else:
            conditions.append(audit_log.c.action == query.action)
    if query.target_type is not None:
        conditions.append(audit_log.c.target_type == query.target_type)
    if query.target_id is not None:
        conditions.append(audit_log.c.target_id == query.target_id)
    if query.since is not None:
        conditions.append(audit_log.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(audit_log.c.created_at < query.until)
    if query.cursor is not None:
        conditions.append(audit_log.c.audit_id < query.cursor)
    limit = max(1, min(query.limit, MAX_PAGE))
    statement = (
        sa.select(audit_log)
        .where(*conditions)
        .order_by(audit_log.c.audit_id.desc())
        .limit(limit + 1)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    changes = [_change(row) for row in rows[:limit]]
    return changes, len(rows) > limit


def _change(row: sa.Row[Any]) -> Change:
    created = as_utc(row.created_at)
    assert created is not None
    return Change(
        audit_id=row.audit_id,
        created_at=created,
        workspace_id=row.workspace_id,
        actor=row.actor,
        actor_kind=row.actor_kind,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        before=row.before,
        after=row.after,
        address=row.address,
    )
