"""One-time links: the first owner's sign-up, and setting a password (`signin_links`).

A link carries a random token; only its SHA-256 is stored, so a copy of the table opens nothing.
A link works once, until it expires.

The first-owner link is made by `steerway serve` before its workers start, so one start prints
one link. Several replicas starting at once each print one; each start makes the links printed
before it unusable, under a database-wide lock (an advisory lock on Postgres, the write lock on
SQLite), so exactly one first-owner link works at any time: the one printed last. The first
owner is created under the same lock, so two people opening two links (or the link and the
master key) at once cannot both become the first owner.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from admin_ui.audit import Actor, record_change
from admin_ui.users import (
    User,
    audit_item,
    change_password,
    count_users,
    insert_user,
    read_user,
    workspaces_or_gateway,
)
from telemetry.db import as_utc
from telemetry.schema import DEFAULT_WORKSPACE_ID, signin_links

FIRST_OWNER: Final = "first_owner"
RESET: Final = "reset"
SETUP_PATH: Final = "/admin/setup"
RESET_PATH: Final = "/admin/reset"
_LOCK_ID: Final = 0x5354_5257_5553_5231  # "STRWUSR1": one advisory lock for sign-up links
_MAX_TOKEN_LENGTH: Final = 128


@dataclass(frozen=True, slots=True)
class Link:
    purpose: str
    user_id: str | None
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def exclusive(conn: AsyncConnection) -> None:
    """Hold the sign-up lock until `conn`'s transaction ends. SQLite has one writer at a time,
    so a first write (this one changes nothing) holds its lock the same way."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_ID)))
    else:
        await conn.execute(
            sa.update(signin_links)
            .where(signin_links.c.purpose == "")
            .values(used_at=signin_links.c.used_at)
        )


async def issue_first_owner_link(engine: AsyncEngine, *, hours: float) -> str | None:
    """A new first-owner link's token, when there is no user yet (None otherwise); every
    earlier first-owner link stops working."""
    now = datetime.now(UTC)
    token = new_token()
    async with engine.begin() as conn:
        await exclusive(conn)
        if await count_users(conn):
            return None
        await conn.execute(sa.delete(signin_links).where(signin_links.c.purpose == FIRST_OWNER))
        await conn.execute(
            sa.insert(signin_links).values(
                token_hash=_digest(token),
                purpose=FIRST_OWNER,
                user_id=None,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return token


async def issue_password_link(
    engine: AsyncEngine, user_id: str, *, hours: float, actor: Actor, address: str | None = None
) -> tuple[str, datetime]:
    """A link that sets `user_id`'s password, and when it expires. Earlier unused password
    links of the user stop working. Audited (without the token)."""
    now = datetime.now(UTC)
    expires = now + timedelta(hours=hours)
    token = new_token()
    async with engine.begin() as conn:
        user = await read_user(conn, user_id)
        if user is None:
            raise LookupError(user_id)
        await conn.execute(
            sa.delete(signin_links).where(
                signin_links.c.purpose == RESET, signin_links.c.user_id == user.user_id
            )
        )
        await conn.execute(
            sa.insert(signin_links).values(
                token_hash=_digest(token),
                purpose=RESET,
                user_id=user.user_id,
                created_at=now,
                expires_at=expires,
            )
        )
        for workspace_id in workspaces_or_gateway({m.workspace_id for m in user.memberships}):
            await record_change(
                conn,
                actor=actor,
                action="user.password_link",
                target_type="user",
                target_id=user.user_id,
                workspace_id=workspace_id,
                before=None,
                after={**(audit_item(user, workspace_id) or {}), "link_expires_at": _iso(expires)},
                address=address,
            )
    return token, expires


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def peek(engine: AsyncEngine, token: str | None, purpose: str) -> Link | None:
    """The link, while it can still be used; nothing is changed."""
    if not _plausible(token):
        return None
    assert token is not None
    query = sa.select(signin_links).where(
        signin_links.c.token_hash == _digest(token), signin_links.c.purpose == purpose
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or row.used_at is not None:
        return None
    expires = as_utc(row.expires_at)
    assert expires is not None
    if expires <= datetime.now(UTC):
        return None
    return Link(purpose=row.purpose, user_id=row.user_id, expires_at=expires)


def _plausible(token: str | None) -> bool:
    return bool(token) and len(token or "") <= _MAX_TOKEN_LENGTH


async def _use(conn: AsyncConnection, token: str, purpose: str) -> sa.Row[tuple[str | None]] | None:
    """Mark the link used; its row (user_id) when it was usable, else None."""
    now = datetime.now(UTC)
    digest = _digest(token)
    usable = (
        signin_links.c.token_hash == digest,
        signin_links.c.purpose == purpose,
        signin_links.c.used_at.is_(None),
        signin_links.c.expires_at > now,
    )
    result = await conn.execute(sa.update(signin_links).where(*usable).values(used_at=now))
    if result.rowcount != 1:
        return None
    query = sa.select(signin_links.c.user_id).where(signin_links.c.token_hash == digest)
    return (await conn.execute(query)).first()


class SetupClosed(Exception):
    """The first owner exists already, or the link cannot be used."""


async def create_first_owner(
    engine: AsyncEngine,
    *,
    token: str | None,
    email: str,
    name: str,
    password_hash: str,
    address: str | None = None,
) -> User:
    """The first user: an operator and the default workspace's owner. `token` is the
    first-owner link's (None when the master key was checked instead). `SetupClosed` when a
    user exists or the link is not usable; nothing is written then."""
    async with engine.begin() as conn:
        await exclusive(conn)
        if await count_users(conn):
            raise SetupClosed("the first owner exists already")
        if token is not None:
            if not _plausible(token) or await _use(conn, token, FIRST_OWNER) is None:
                raise SetupClosed("the link has expired or was used")
        else:
            await conn.execute(sa.delete(signin_links).where(signin_links.c.purpose == FIRST_OWNER))
        return await insert_user(
            conn,
            email=email,
            name=name,
            password_hash=password_hash,
            is_operator=True,
            roles={DEFAULT_WORKSPACE_ID: "owner"},
            actor=Actor(email.strip().lower(), "user"),
            address=address,
        )


async def use_password_link(
    engine: AsyncEngine, token: str, password_hash: str, *, address: str | None = None
) -> User | None:
    """Set the password of the link's user and use the link up; None when the link cannot be
    used (expired, used, unknown) or its user is disabled."""
    if not _plausible(token):
        return None
    try:
        async with engine.begin() as conn:
            found = await _use(conn, token, RESET)
            user = None if found is None else await read_user(conn, found.user_id or "")
            if user is None or user.disabled:
                raise _Unusable  # the link stays as it was
            return await change_password(
                conn, user.user_id, password_hash, actor=Actor(user.email, "user"), address=address
            )
    except _Unusable:
        return None


class _Unusable(Exception):
    pass
