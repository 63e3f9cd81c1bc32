"""Console users, their roles, one-time links and the audit log, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.audit import CLI_ACTOR, Actor, AuditFilter, list_changes, record_change
from admin_ui.signin_links import (
    FIRST_OWNER,
    RESET,
    SetupClosed,
    create_first_owner,
    issue_first_owner_link,
    issue_password_link,
    peek,
    use_password_link,
)
from admin_ui.users import UserExists, UserStore
from gateway.keys.limits import InvalidField
from gateway.keys.store import KeyStore, UnknownWorkspace
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID, audit_log, signin_links, users

T = TypeVar("T")
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
ADMIN = Actor("owner@example.com", "user")


@asynccontextmanager
async def engine_of(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def migrated(migrated_database_url: str) -> str:
    return migrated_database_url


def run(url: str, body: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def go() -> T:
        async with engine_of(url) as engine:
            return await body(engine)

    return asyncio.run(go())


async def audit_rows(engine: AsyncEngine, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(audit_log).order_by(audit_log.c.audit_id)
    for name, value in where.items():
        query = query.where(audit_log.c[name] == value)
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in (await conn.execute(query)).all()]


def test_users_have_roles_per_workspace_and_every_change_is_audited(migrated: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        store = UserStore(engine)
        team = await KeyStore(engine).create_workspace("team-a")
        created = await store.create(
            email="  Ada@Example.COM ",
            name="Ada",
            password_hash=HASH,
            roles={DEFAULT_WORKSPACE_ID: "owner", "team-a": "viewer"},
            actor=CLI_ACTOR,
        )
        assert created.email == "ada@example.com"
        assert created.roles == {DEFAULT_WORKSPACE_ID: "owner", team.workspace_id: "viewer"}
        assert created.has_password and not created.is_operator and not created.disabled
        assert await store.get("ADA@example.com") == created
        assert await store.get(created.user_id) == created
        assert await store.get("nobody@example.com") is None
        assert await store.get("bad\x00email") is None

        with pytest.raises(UserExists):
            await store.create(email="ada@EXAMPLE.com", name="Again", actor=CLI_ACTOR)
        with pytest.raises(UnknownWorkspace):
            await store.create(
                email="bob@example.com", name="Bob", roles={"nowhere": "viewer"}, actor=CLI_ACTOR
            )
        assert await store.get("bob@example.com") is None  # nothing of it was written
        with pytest.raises(InvalidField) as refused:
            await store.create(
                email="bob@example.com", name="Bob", roles={"team-a": "king"}, actor=CLI_ACTOR
            )
        assert refused.value.param == "roles.team-a"
        with pytest.raises(InvalidField):
            await store.create(email="not an email", name="X", actor=CLI_ACTOR)

        bob = await store.create(
            email="bob@example.com", name="Bob", roles={"team-a": "admin"}, actor=ADMIN
        )
        assert bob.has_password is False
        assert [u.email for u in await store.list()] == ["ada@example.com", "bob@example.com"]
        assert [u.email for u in await store.list({team.workspace_id})] == [
            "ada@example.com",
            "bob@example.com",
        ]
        assert [u.email for u in await store.list({DEFAULT_WORKSPACE_ID})] == ["ada@example.com"]

        # One audit row per workspace, each showing that workspace's role only.
        created_rows = await audit_rows(engine, action="user.create", target_id=created.user_id)
        assert {row["workspace_id"]: row["after"]["role"] for row in created_rows} == {
            DEFAULT_WORKSPACE_ID: "owner",
            team.workspace_id: "viewer",
        }
        assert all(row["actor"] == "cli" and row["actor_kind"] == "cli" for row in created_rows)
        assert all(row["before"] is None for row in created_rows)

        changed = await store.update(
            created.user_id,
            roles={"team-a": "admin", DEFAULT_WORKSPACE_ID: None},
            actor=ADMIN,
            address="10.0.0.7",
        )
        assert changed is not None and changed.roles == {team.workspace_id: "admin"}
        rows = await audit_rows(engine, action="user.role_change")
        assert {
            row["workspace_id"]: (row["before"]["role"], row["after"]["role"]) for row in rows
        } == {DEFAULT_WORKSPACE_ID: ("owner", None), team.workspace_id: ("viewer", "admin")}
        assert {(row["actor"], row["actor_kind"], row["address"]) for row in rows} == {
            ("owner@example.com", "user", "10.0.0.7")
        }

        disabled = await store.update(created.user_id, disabled=True, actor=ADMIN)
        assert disabled is not None and disabled.disabled
        (row,) = await audit_rows(engine, action="user.disable")
        assert row["workspace_id"] == team.workspace_id
        assert (row["before"]["disabled"], row["after"]["disabled"]) == (False, True)
        unchanged = await store.update(created.user_id, disabled=True, actor=ADMIN)
        assert unchanged == disabled
        assert len(await audit_rows(engine, action="user.disable")) == 1  # no change, no row
        assert await store.update("0" * 32, name="x", actor=ADMIN) is None

        before = (await store.get(bob.user_id)) or bob
        renewed = await store.set_password(bob.user_id, HASH.replace("aGFz", "bmV3"), actor=ADMIN)
        assert renewed is not None and renewed.has_password
        assert renewed.password_changed_at is not None
        assert before.password_changed_at is None
        (row,) = await audit_rows(engine, action="user.password_change")
        assert HASH[:30] not in str(row)

        operator = await store.create(
            email="ops@example.com", name="Ops", is_operator=True, actor=CLI_ACTOR
        )
        (row,) = await audit_rows(engine, action="user.create", target_id=operator.user_id)
        assert row["workspace_id"] is None  # in no workspace: a gateway-wide change

    run(migrated, body)


def test_the_first_owner_link_is_one_and_works_once(migrated: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        first = await issue_first_owner_link(engine, hours=24)
        second = await issue_first_owner_link(engine, hours=24)
        assert first and second and first != second
        assert await peek(engine, first, FIRST_OWNER) is None  # a later start replaced it
        link = await peek(engine, second, FIRST_OWNER)
        assert link is not None and link.expires_at > datetime.now(UTC) + timedelta(hours=23)
        assert await peek(engine, second, RESET) is None
        async with engine.connect() as conn:
            stored = (await conn.execute(sa.select(signin_links))).all()
        assert [row.token_hash for row in stored] == [hashlib.sha256(second.encode()).hexdigest()]

        with pytest.raises(SetupClosed):
            await create_first_owner(
                engine, token=first, email="a@example.com", name="A", password_hash=HASH
            )
        owner = await create_first_owner(
            engine,
            token=second,
            email="Owner@Example.com",
            name="Owner",
            password_hash=HASH,
            address="127.0.0.1",
        )
        assert owner.is_operator and owner.roles == {DEFAULT_WORKSPACE_ID: "owner"}
        assert owner.has_password
        for token in (second, None):
            with pytest.raises(SetupClosed):
                await create_first_owner(
                    engine, token=token, email="b@example.com", name="B", password_hash=HASH
                )
        assert await issue_first_owner_link(engine, hours=24) is None
        assert await UserStore(engine).count() == 1
        (row,) = await audit_rows(engine, action="user.create")
        assert (row["actor"], row["address"]) == ("owner@example.com", "127.0.0.1")

    run(migrated, body)


def test_concurrent_starts_and_sign_ups_leave_one_link_and_one_first_owner(migrated: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        engines = [create_engine(migrated) for _ in range(4)]
        try:
            tokens = await asyncio.gather(
                *(issue_first_owner_link(each, hours=1) for each in engines)
            )
            usable = [token for token in tokens if await peek(engine, token, FIRST_OWNER)]
            assert len(usable) == 1

            async def sign_up(each: AsyncEngine, token: str | None, n: int) -> str:
                try:
                    await create_first_owner(
                        each, token=token, email=f"u{n}@example.com", name="U", password_hash=HASH
                    )
                    return "created"
                except SetupClosed:
                    return "refused"

            outcomes = await asyncio.gather(
                sign_up(engines[0], usable[0], 0),
                sign_up(engines[1], None, 1),  # the master key's way, at the same moment
                sign_up(engines[2], usable[0], 2),
                sign_up(engines[3], None, 3),
            )
        finally:
            for each in engines:
                await each.dispose()
        assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
        async with engine.connect() as conn:
            count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar()
        assert count == 1

    run(migrated, body)


def test_a_password_link_sets_the_password_once(migrated: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        store = UserStore(engine)
        user = await store.create(
            email="new@example.com", name="New", roles={DEFAULT_WORKSPACE_ID: "viewer"}, actor=ADMIN
        )
        old, _ = await issue_password_link(engine, user.user_id, hours=1, actor=ADMIN)
        token, expires = await issue_password_link(engine, user.user_id, hours=1, actor=ADMIN)
        assert expires > datetime.now(UTC)
        assert await peek(engine, old, RESET) is None  # the newer link replaced it
        assert await use_password_link(engine, old, HASH) is None
        link = await peek(engine, token, RESET)
        assert link is not None and link.user_id == user.user_id

        changed = await use_password_link(engine, token, HASH, address="192.0.2.1")
        assert changed is not None and changed.has_password
        assert await use_password_link(engine, token, HASH) is None
        assert await peek(engine, token, RESET) is None

        rows = await audit_rows(engine, target_id=user.user_id)
        assert [row["action"] for row in rows] == [
            "user.create",
            "user.password_link",
            "user.password_link",
            "user.password_change",
        ]
        assert rows[-1]["actor"] == "new@example.com" and rows[-1]["address"] == "192.0.2.1"
        for secret in (token, old, hashlib.sha256(token.encode()).hexdigest(), HASH):
            assert secret not in str(rows)

        later, _ = await issue_password_link(engine, user.user_id, hours=1, actor=ADMIN)
        await store.update(user.user_id, disabled=True, actor=ADMIN)
        assert await use_password_link(engine, later, HASH) is None  # not for a disabled user
        assert await peek(engine, later, RESET) is not None  # and the link was not used up

        with pytest.raises(LookupError):
            await issue_password_link(engine, "0" * 32, hours=1, actor=ADMIN)
        assert await peek(engine, "x" * 500, RESET) is None
        assert await peek(engine, None, RESET) is None

    run(migrated, body)


def test_the_audit_log_filters_and_pages_newest_first(migrated: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        ids = []
        for n in range(7):
            ids.append(
                await record_change(
                    engine,
                    actor=Actor(
                        "ada@example.com" if n % 2 else "master", "user" if n % 2 else "key"
                    ),
                    action="key.create" if n < 5 else "workspace.update",
                    target_type="key" if n < 5 else "workspace",
                    target_id=f"target-{n}",
                    workspace_id="w1" if n < 4 else ("w2" if n < 6 else None),
                    before=None,
                    after={"n": n, "key": "sk-must-not-be-kept", "password_hash": "$argon2id$x"},
                )
            )
        everything, more = await list_changes(engine, AuditFilter(limit=10))
        assert [c.audit_id for c in everything] == ids[::-1] and not more
        assert all(c.after == {"n": int(c.target_id[-1])} for c in everything)

        first, more = await list_changes(engine, AuditFilter(limit=3))
        assert [c.audit_id for c in first] == ids[:3:-1][:3] and more
        rest, more = await list_changes(engine, AuditFilter(limit=10, cursor=first[-1].audit_id))
        assert [c.audit_id for c in rest] == ids[:4][::-1] and not more

        scoped, _ = await list_changes(engine, AuditFilter(workspace_ids={"w2"}))
        assert [c.target_id for c in scoped] == ["target-5", "target-4"]
        none, _ = await list_changes(engine, AuditFilter(workspace_ids=set()))
        assert none == []
        by_actor, _ = await list_changes(engine, AuditFilter(actor="master", workspace_id="w1"))
        assert [c.target_id for c in by_actor] == ["target-2", "target-0"]
        by_kind, _ = await list_changes(engine, AuditFilter(action="workspace."))
        assert [c.target_id for c in by_kind] == ["target-6", "target-5"]
        exact, _ = await list_changes(engine, AuditFilter(action="key.", target_id="target-3"))
        assert [c.actor_kind for c in exact] == ["user"]
        like, _ = await list_changes(engine, AuditFilter(action="key%"))
        assert like == []  # a prefix is a prefix, not a pattern
        later, _ = await list_changes(
            engine, AuditFilter(since=datetime.now(UTC) + timedelta(minutes=1))
        )
        earlier, _ = await list_changes(
            engine, AuditFilter(until=datetime.now(UTC) + timedelta(minutes=1), target_type="key")
        )
        assert later == [] and len(earlier) == 5

        with pytest.raises(ValueError):
            await record_change(
                engine,
                actor=Actor("x", "robot"),
                action="a",
                target_type="t",
                target_id="i",
                workspace_id=None,
            )

    run(migrated, body)
