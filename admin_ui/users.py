"""Console users and their roles per workspace (`users`, `memberships`).

A user signs in with an email and a password (only its Argon2id hash is stored, see
`admin_ui.passwords`). In each workspace a user has at most one role: owner (everything, the
workspace's users included), admin (keys and settings) or viewer (read only). Operators
(`is_operator`) act on every workspace and on what is gateway-wide: rules, simulation, replay.

Every change is written with its audit rows in one transaction. A change to a user is recorded
once per workspace it touches, showing that workspace's role only, so each workspace's owners
read their own history and nothing of another workspace; a user in no workspace is recorded as
a gateway-wide change (operators only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from msgspec import UNSET, UnsetType
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from admin_ui.audit import Actor, record_change
from gateway.keys.limits import InvalidField
from gateway.keys.store import UnknownWorkspace, parse_name
from telemetry.db import as_utc
from telemetry.escaping import has_unstorable
from telemetry.ids import uuid7_hex
from telemetry.schema import memberships, users, workspaces

ROLES: Final = ("owner", "admin", "viewer")
MAX_EMAIL_LENGTH: Final = 320
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
_USER_ID: Final = re.compile(r"^[0-9a-f]{32}$")


class UserExists(ValueError):
    pass


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    slug: str
    role: str


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A user as the console shows it: never the password hash."""

    user_id: str
    email: str
    display_name: str
    is_operator: bool
    created_at: datetime
    has_password: bool = False
    password_changed_at: datetime | None = None
    last_sign_in_at: datetime | None = None
    disabled_at: datetime | None = None
    memberships: tuple[Membership, ...] = ()

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def role_in(self, workspace_id: str) -> str | None:
        for membership in self.memberships:
            if membership.workspace_id == workspace_id:
                return membership.role
        return None

    @property
    def roles(self) -> dict[str, str]:
        return {m.workspace_id: m.role for m in self.memberships}


# --- validation -------------------------------------------------------------------------------


def parse_email(value: Any, path: str = "email") -> str:
    """An email address as stored and compared: trimmed and lower-cased."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(path, "expected an email address")
    email = value.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email) or has_unstorable(email):
        raise InvalidField(path, "expected an email address such as ada@example.com")
    return email


def parse_user_role(value: Any, path: str = "role") -> str:
    if value not in ROLES:
        raise InvalidField(path, f"expected one of {', '.join(ROLES)}")
    return str(value)


def audit_item(user: User | None, workspace_id: str | None) -> dict[str, Any] | None:
    """A user as one workspace's audit log shows it: that workspace's role only."""
    if user is None:
        return None
    item: dict[str, Any] = {
        "id": user.user_id,
        "email": user.email,
        "name": user.display_name,
        "operator": user.is_operator,
        "disabled": user.disabled,
    }
    if workspace_id is not None:
        item["role"] = user.role_in(workspace_id)
    return item


# --- reading ----------------------------------------------------------------------------------


def _user_is(user: str) -> sa.ColumnElement[bool]:
    """The user with this id or email."""
    if _USER_ID.match(user):
        return users.c.user_id == user
    return users.c.email == user.strip().lower()


async def _memberships(
    conn: AsyncConnection, user_ids: list[str]
) -> dict[str, tuple[Membership, ...]]:
    if not user_ids:
        return {}
    query = (
        sa.select(memberships.c.user_id, memberships.c.workspace_id, memberships.c.role)
        .add_columns(workspaces.c.slug)
        .join(workspaces, workspaces.c.workspace_id == memberships.c.workspace_id)
        .where(memberships.c.user_id.in_(user_ids))
        .order_by(workspaces.c.slug)
    )
    found: dict[str, list[Membership]] = {}
    for row in (await conn.execute(query)).all():
        found.setdefault(row.user_id, []).append(
            Membership(workspace_id=row.workspace_id, slug=row.slug, role=row.role)
        )
    return {user_id: tuple(items) for user_id, items in found.items()}


def _user(row: sa.Row[Any], held: tuple[Membership, ...]) -> User:
    created = as_utc(row.created_at)
    assert created is not None
    return User(
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        is_operator=bool(row.is_operator),
        created_at=created,
        has_password=row.password_hash is not None,
        password_changed_at=as_utc(row.password_changed_at),
        last_sign_in_at=as_utc(row.last_sign_in_at),
        disabled_at=as_utc(row.disabled_at),
        memberships=held,
    )


async def read_user(conn: AsyncConnection, user: str) -> User | None:
    """A user by id or email, within `conn`'s transaction."""
    if has_unstorable(user):
        return None
    row = (await conn.execute(sa.select(users).where(_user_is(user)))).first()
    if row is None:
        return None
    return _user(row, (await _memberships(conn, [row.user_id])).get(row.user_id, ()))


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


async def _workspace_ids(conn: AsyncConnection, roles: Mapping[str, Any]) -> dict[str, str]:
    """Workspace ids or slugs, each resolved to its id (`UnknownWorkspace` otherwise)."""
    resolved: dict[str, str] = {}
    for workspace in roles:
        if has_unstorable(workspace):
            raise UnknownWorkspace(f"unknown workspace '{workspace[:100]!r}'")
        query = sa.select(workspaces.c.workspace_id).where(
            sa.or_(workspaces.c.workspace_id == workspace, workspaces.c.slug == workspace)
        )
        found = (await conn.execute(query)).first()
        if found is None:
            raise UnknownWorkspace(f"unknown workspace '{workspace[:100]}'")
        resolved[workspace] = found.workspace_id
    return resolved


# --- writing ----------------------------------------------------------------------------------


async def insert_user(
    conn: AsyncConnection,
    *,
    email: str,
    name: str,
    password_hash: str | None,
    is_operator: bool,
    roles: Mapping[str, str],
    actor: Actor,
    address: str | None = None,
) -> User:
    """A new user with a role in each workspace of `roles` (ids or slugs), audited; within
    `conn`'s transaction."""
    email = parse_email(email)
    name = parse_name(name)
    checked = {ws: parse_user_role(role, f"roles.{ws[:100]}") for ws, role in roles.items()}
    resolved = await _workspace_ids(conn, checked)
    now = datetime.now(UTC)
    user_id = uuid7_hex()
    taken = await conn.execute(sa.select(users.c.user_id).where(users.c.email == email))
    if taken.first() is not None:
        raise UserExists(f"a user with email '{email}' already exists")
    await conn.execute(
        sa.insert(users).values(
            user_id=user_id,
            email=email,
            display_name=name,
            password_hash=password_hash,
            is_operator=is_operator,
            created_at=now,
            password_changed_at=now if password_hash else None,
        )
    )
    rows = [
        {"user_id": user_id, "workspace_id": resolved[ws], "role": role, "created_at": now}
        for ws, role in checked.items()
    ]
    if rows:
        await conn.execute(sa.insert(memberships), rows)
    created = await read_user(conn, user_id)
    assert created is not None
    await _audit(conn, "user.create", None, created, actor, address)
    return created


async def _audit(
    conn: AsyncConnection,
    action: str,
    before: User | None,
    after: User | None,
    actor: Actor,
    address: str | None,
) -> None:
    """One row per workspace the change touches (both sides' memberships), or one
    gateway-wide row for a user in no workspace."""
    subject = after or before
    assert subject is not None
    touched = {m.workspace_id for user in (before, after) if user for m in user.memberships}
    for workspace_id in workspaces_or_gateway(touched):
        await record_change(
            conn,
            actor=actor,
            action=action,
            target_type="user",
            target_id=subject.user_id,
            workspace_id=workspace_id,
            before=audit_item(before, workspace_id),
            after=audit_item(after, workspace_id),
            address=address,
        )


def workspaces_or_gateway(workspace_ids: set[str]) -> list[str | None]:
    """Where a user change is recorded: each workspace, or gateway-wide (None) for none."""
    return [*sorted(workspace_ids)] or [None]


class UserStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user: str) -> User | None:
        """A user by id or email."""
        async with self._engine.connect() as conn:
            return await read_user(conn, user)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return await count_users(conn)

    async def list(self, workspace_ids: set[str] | None = None) -> list[User]:
        """Every user (`workspace_ids` None), or those with a role in one of `workspace_ids`,
        oldest first."""
        query = sa.select(users).order_by(users.c.user_id)
        if workspace_ids is not None:
            members = sa.select(memberships.c.user_id).where(
                memberships.c.workspace_id.in_(sorted(workspace_ids))
            )
            query = query.where(users.c.user_id.in_(members))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            held = await _memberships(conn, [row.user_id for row in rows])
        return [_user(row, held.get(row.user_id, ())) for row in rows]

    async def create(
        self,
        *,
        email: str,
        name: str,
        password_hash: str | None = None,
        is_operator: bool = False,
        roles: Mapping[str, str] | None = None,
        actor: Actor,
        address: str | None = None,
    ) -> User:
        try:
            async with self._engine.begin() as conn:
                return await insert_user(
                    conn,
                    email=email,
                    name=name,
                    password_hash=password_hash,
                    is_operator=is_operator,
                    roles=roles or {},
                    actor=actor,
                    address=address,
                )
        except sa_exc.IntegrityError:  # the same email, inserted at the same moment elsewhere
            raise UserExists(f"a user with email '{parse_email(email)}' already exists") from None

    async def credentials(self, email: str) -> tuple[User | None, str | None]:
        """The user signing in with `email` (without its roles: one query, whether the account
        exists or not) and its stored hash; (None, None) when unknown."""
        try:
            email = parse_email(email)
        except InvalidField:
            return None, None
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.email == email))).first()
        if row is None:
            return None, None
        return _user(row, ()), row.password_hash

    async def signed_in(self, user_id: str, rehashed: str | None = None) -> None:
        """Note a sign-in; `rehashed` replaces a hash made with older parameters (the same
        password, so sessions stay valid: `password_changed_at` is not touched)."""
        values: dict[str, Any] = {"last_sign_in_at": datetime.now(UTC)}
        if rehashed is not None:
            values["password_hash"] = rehashed
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(users).where(users.c.user_id == user_id).values(values))

    async def update(
        self,
        user: str,
        *,
        name: str | UnsetType = UNSET,
        is_operator: bool | UnsetType = UNSET,
        disabled: bool | UnsetType = UNSET,
        roles: Mapping[str, str | None] | UnsetType = UNSET,
        actor: Actor,
        address: str | None = None,
    ) -> User | None:
        """Change what is given; `roles` maps workspaces (ids or slugs) to a role, or to None to
        take the user out of that workspace. None when there is no such user."""
        values: dict[str, Any] = {}
        if name is not UNSET:
            values["display_name"] = parse_name(name)
        if is_operator is not UNSET:
            values["is_operator"] = bool(is_operator)
        checked: dict[str, str | None] = {}
        if roles is not UNSET:
            checked = {
                ws: None if role is None else parse_user_role(role, f"roles.{ws[:100]}")
                for ws, role in roles.items()
            }
        async with self._engine.begin() as conn:
            before = await read_user(conn, user)
            if before is None:
                return None
            if disabled is not UNSET and bool(disabled) != before.disabled:
                values["disabled_at"] = datetime.now(UTC) if disabled else None
            if values:
                await conn.execute(
                    sa.update(users).where(users.c.user_id == before.user_id).values(values)
                )
            await _set_roles(conn, before.user_id, checked)
            after = await read_user(conn, before.user_id)
            assert after is not None
            if after != before:
                await _audit(conn, _update_action(before, after), before, after, actor, address)
        return after

    async def set_password(
        self, user: str, password_hash: str, *, actor: Actor, address: str | None = None
    ) -> User | None:
        """A new password; every session started before it ends."""
        async with self._engine.begin() as conn:
            return await change_password(conn, user, password_hash, actor=actor, address=address)


async def change_password(
    conn: AsyncConnection,
    user: str,
    password_hash: str,
    *,
    actor: Actor,
    address: str | None = None,
) -> User | None:
    before = await read_user(conn, user)
    if before is None:
        return None
    await conn.execute(
        sa.update(users)
        .where(users.c.user_id == before.user_id)
        .values(password_hash=password_hash, password_changed_at=datetime.now(UTC))
    )
    after = await read_user(conn, before.user_id)
    assert after is not None
    await _audit(conn, "user.password_change", before, after, actor, address)
    return after


async def _set_roles(conn: AsyncConnection, user_id: str, roles: Mapping[str, str | None]) -> None:
    resolved = await _workspace_ids(conn, roles)
    now = datetime.now(UTC)
    for workspace, role in roles.items():
        workspace_id = resolved[workspace]
        await conn.execute(
            sa.delete(memberships).where(
                memberships.c.user_id == user_id, memberships.c.workspace_id == workspace_id
            )
        )
        if role is not None:
            await conn.execute(
                sa.insert(memberships).values(
                    user_id=user_id, workspace_id=workspace_id, role=role, created_at=now
                )
            )


def _update_action(before: User, after: User) -> str:
    """The most telling name for a change: disabling or enabling outweighs the rest."""
    if before.disabled != after.disabled:
        return "user.disable" if after.disabled else "user.enable"
    if before.roles != after.roles or before.is_operator != after.is_operator:
        return "user.role_change"
    return "user.update"
