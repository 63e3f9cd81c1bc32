"""KeyStore's workspaces and keys with limits, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.entry.auth import MASTER_KEY_INFO, Authenticator
from gateway.keys.limits import NO_LIMITS, BudgetLimit, InvalidField, WorkspaceLimits
from gateway.keys.store import (
    KeyCounts,
    KeyInfo,
    KeyStore,
    UnknownWorkspace,
    WorkspaceExists,
    hash_key,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID, api_keys, workspaces

MONTHLY = BudgetLimit(limit_micros=10_000_000, window="monthly", soft_percent=80.0)
DAILY = BudgetLimit(limit_micros=1_500_000, window="daily")


@pytest.fixture
def store(engine: AsyncEngine) -> KeyStore:
    return KeyStore(engine)


async def stored_row(engine: AsyncEngine, key_id: str) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).one()
    return row


# --- keys ---------------------------------------------------------------------------------------


async def test_a_key_keeps_every_limit_it_was_created_with(
    store: KeyStore, engine: AsyncEngine
) -> None:
    team = await store.create_workspace("team-a", name="Team A")
    expires = datetime(2031, 5, 1, 12, 30, tzinfo=UTC)
    created = await store.create(
        "  batch jobs ",
        workspace_id=team.workspace_id,
        role="master",
        expires_at=expires,
        allowed_models=["gpt-4o*", "mock-gpt", "gpt-4o*"],
        rpm_limit=60,
        tpm_limit=20_000,
        max_parallel=4,
        budgets=[MONTHLY, DAILY],
        default_tags=["batch", " nightly "],
        guardrails=["pii", "injection"],
        metadata={"owner": "ops", "nested": {"n": [1, 2]}},
    )
    info = created.info
    assert (info.name, info.role, info.workspace_id) == ("batch jobs", "master", team.workspace_id)
    assert info.allowed_models == ("gpt-4o*", "mock-gpt")
    assert (info.rpm_limit, info.tpm_limit, info.max_parallel) == (60, 20_000, 4)
    assert info.budgets == (MONTHLY, DAILY)
    assert info.default_tags == ("batch", "nightly")
    assert info.guardrails == ("pii", "injection")
    assert info.expires_at == expires

    for read in (
        await store.get(info.key_id),
        await store.find_by_hash(hash_key(created.plaintext)),
        *(await store.list(workspace_id=team.workspace_id)),
    ):
        assert read == info

    row = await stored_row(engine, info.key_id)
    assert row.budgets == [
        {"limit_usd": "10.00", "window": "monthly", "soft_percent": 80},
        {"limit_usd": "1.50", "window": "daily"},
    ]
    assert row.guardrails == ["pii", "injection"]
    assert created.plaintext not in repr(row)


async def test_a_key_without_limits_is_stored_with_sql_nulls(
    store: KeyStore, engine: AsyncEngine
) -> None:
    info = (await store.create("plain")).info
    assert info.allowed_models is None and info.budgets == () and info.default_tags == ()
    assert info.guardrails == () and info.workspace_limits.guardrails == ()
    assert info.workspace_limits == NO_LIMITS
    async with engine.connect() as conn:
        unrestricted = await conn.execute(
            sa.select(api_keys.c.key_id).where(api_keys.c.allowed_models.is_(None))
        )
        assert unrestricted.scalars().all() == [info.key_id]
    row = await stored_row(engine, info.key_id)
    assert (row.budgets, row.default_tags, row.guardrails, row.rpm_limit) == ([], [], [], None)


@pytest.mark.parametrize(
    ("patterns", "model", "allowed"),
    [
        (None, "anything-at-all", True),
        (("gpt-4o*",), "gpt-4o-mini", True),
        (("gpt-4o*",), "gpt-4", False),
        (("gpt-4o*",), "GPT-4o-mini", False),
        (("mock-gpt",), "mock-gpt-large", False),
        (("mock-gpt", "claude-?-haiku"), "claude-3-haiku", True),
        (("mock-gpt", "claude-?-haiku"), "claude-35-haiku", False),
        (("[ab]*",), "beta", True),
        (("[ab]*",), "gamma", False),
        (("openai/*",), "openai/gpt-4o", True),
    ],
)
def test_allowed_models_are_fnmatch_patterns(
    patterns: tuple[str, ...] | None, model: str, allowed: bool
) -> None:
    key = KeyInfo(
        key_id="k", workspace_id="w", name="n", role="user", display_prefix="p",
        allowed_models=patterns,
    )  # fmt: skip
    assert key.allows_model(model) is allowed


def test_the_master_key_has_no_limits() -> None:
    assert MASTER_KEY_INFO.allows_model("any-model")
    assert MASTER_KEY_INFO.workspace_limits == NO_LIMITS
    assert MASTER_KEY_INFO.budgets == ()
    assert MASTER_KEY_INFO.rpm_limit is MASTER_KEY_INFO.tpm_limit is None
    assert MASTER_KEY_INFO.max_parallel is None
    assert MASTER_KEY_INFO.guardrails == ()


async def test_an_update_changes_only_what_it_names(store: KeyStore) -> None:
    created = (
        await store.create(
            "svc",
            allowed_models=["mock-*"],
            rpm_limit=10,
            tpm_limit=1000,
            budgets=[DAILY],
            default_tags=["a"],
            metadata={"team": "x"},
        )
    ).info
    updated = await store.update(created.key_id, rpm_limit=99, budgets=[MONTHLY])
    assert updated is not None
    assert (updated.rpm_limit, updated.budgets) == (99, (MONTHLY,))
    assert updated.tpm_limit == 1000 and updated.allowed_models == ("mock-*",)
    assert updated.default_tags == ("a",) and updated.metadata == {"team": "x"}
    assert updated.name == "svc" and updated.created_at == created.created_at

    cleared = await store.update(
        created.key_id,
        allowed_models=None,
        tpm_limit=None,
        budgets=None,
        default_tags=None,
        metadata=None,
        name="renamed",
        role="master",
    )
    assert cleared is not None
    assert cleared.allowed_models is None and cleared.allows_model("whatever")
    assert (cleared.tpm_limit, cleared.budgets, cleared.default_tags) == (None, (), ())
    assert (cleared.metadata, cleared.name, cleared.role) == ({}, "renamed", "master")
    assert cleared.rpm_limit == 99

    expiring = await store.update(created.key_id, expires_at=datetime(2000, 1, 1))
    assert expiring is not None and expiring.expires_at == datetime(2000, 1, 1, tzinfo=UTC)
    assert (
        not expiring.active(datetime.now(UTC)) and expiring.status(datetime.now(UTC)) == "expired"
    )
    assert await store.update("0" * 32, rpm_limit=5) is None


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"role": "admin"}, "role"),
        ({"allowed_models": []}, "allowed_models"),
        ({"allowed_models": "gpt-4o"}, "allowed_models"),
        ({"allowed_models": ["ok", ""]}, "allowed_models[1]"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"tpm_limit": -5}, "tpm_limit"),
        ({"max_parallel": 2.5}, "max_parallel"),
        ({"default_tags": ["a,b"]}, "default_tags[0]"),
        ({"default_tags": ["t"] * 40 + [str(i) for i in range(40)]}, "default_tags"),
        ({"guardrails": "pii"}, "guardrails"),
        ({"guardrails": ["pii", "not a name"]}, "guardrails[1]"),
        ({"guardrails": ["pii", ""]}, "guardrails[1]"),
        ({"guardrails": ["pii", "pii"]}, "guardrails[1]"),
        ({"guardrails": [f"g{i}" for i in range(33)]}, "guardrails"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": {"big": "x" * 20_000}}, "metadata"),
        ({"budgets": [DAILY, BudgetLimit(2_000_000, "daily")]}, "budgets[1].window"),
        ({"budgets": [BudgetLimit(0, "daily")]}, "budgets[0].limit_usd"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    store: KeyStore, changes: dict[str, object], param: str
) -> None:
    created = (await store.create("steady", rpm_limit=7)).info
    with pytest.raises(InvalidField) as caught:
        await store.update(created.key_id, **changes)  # type: ignore[arg-type]
    assert caught.value.param == param
    assert await store.get(created.key_id) == created

    creation = {"name": "other", **changes}
    with pytest.raises(InvalidField) as again:
        await store.create(**creation)  # type: ignore[arg-type]
    assert again.value.param == param
    assert [key.key_id for key in await store.list()] == [created.key_id]


async def test_a_key_needs_an_existing_workspace(store: KeyStore) -> None:
    with pytest.raises(UnknownWorkspace):
        await store.create("orphan", workspace_id="f" * 32)
    assert await store.list(include_revoked=True) == []


async def test_listing_and_revoking(store: KeyStore) -> None:
    team = await store.create_workspace("team-b")
    default_key = (await store.create("in default")).info
    team_key = (await store.create("in team", workspace_id=team.workspace_id)).info
    assert [k.key_id for k in await store.list()] == [default_key.key_id, team_key.key_id]
    assert [k.key_id for k in await store.list(workspace_id=team.workspace_id)] == [team_key.key_id]

    revoked = await store.revoke(team_key.key_id)
    assert revoked is not None and revoked.revoked_at is not None
    assert revoked.status(datetime.now(UTC)) == "revoked"
    assert [k.key_id for k in await store.list()] == [default_key.key_id]
    everything = await store.list(workspace_id=team.workspace_id, include_revoked=True)
    assert [k.key_id for k in everything] == [team_key.key_id]


async def test_keys_are_counted_per_workspace_and_state(store: KeyStore) -> None:
    team = await store.create_workspace("team-count")
    now = datetime.now(UTC)
    for name in ("a", "b", "c"):
        await store.create(name, workspace_id=team.workspace_id)
    await store.create("later", workspace_id=team.workspace_id, expires_at=now + timedelta(days=1))
    await store.create("gone", workspace_id=team.workspace_id, expires_at=now - timedelta(days=1))
    revoked = await store.create("revoked", workspace_id=team.workspace_id)
    await store.revoke(revoked.info.key_id)
    expired_and_revoked = await store.create(
        "both", workspace_id=team.workspace_id, expires_at=now - timedelta(days=2)
    )
    await store.revoke(expired_and_revoked.info.key_id)
    await store.create("elsewhere")

    counts = await store.count_by_workspace(now)
    assert counts[team.workspace_id] == KeyCounts(active=4, expired=1, revoked=2)
    assert counts[team.workspace_id].total == 7
    assert counts[DEFAULT_WORKSPACE_ID] == KeyCounts(active=1)
    assert set(counts) == {team.workspace_id, DEFAULT_WORKSPACE_ID}


# --- workspaces ---------------------------------------------------------------------------------


async def test_workspaces_are_created_read_and_listed(store: KeyStore) -> None:
    settings = {
        "budgets": [{"limit_usd": "250", "window": "monthly", "soft_percent": 90}],
        "rpm_limit": 600,
    }
    team = await store.create_workspace("research", name="Research", settings=settings)
    assert (team.slug, team.name) == ("research", "Research")
    assert team.limits == WorkspaceLimits(
        budgets=(BudgetLimit(250_000_000, "monthly", 90.0),), rpm_limit=600
    )
    assert team.settings == {
        "budgets": [{"limit_usd": "250.00", "window": "monthly", "soft_percent": 90}],
        "rpm_limit": 600,
        "tpm_limit": None,
        "max_parallel": None,
        "guardrails": [],
    }
    assert await store.get_workspace("research") == team
    assert await store.get_workspace(team.workspace_id) == team
    assert await store.get_workspace("nope") is None
    assert await store.workspace_limits(team.workspace_id) == team.limits
    with pytest.raises(UnknownWorkspace):
        await store.workspace_limits("f" * 32)

    listed = await store.list_workspaces()
    assert [w.slug for w in listed] == ["default", "research"]
    assert listed[0].workspace_id == DEFAULT_WORKSPACE_ID and listed[0].limits == NO_LIMITS

    with pytest.raises(WorkspaceExists):
        await store.create_workspace("research")
    assert await store.ensure_workspace("research") == team.workspace_id


@pytest.mark.parametrize(
    ("slug", "settings", "param"),
    [
        ("Bad Slug", None, "slug"),
        ("-leading", None, "slug"),
        ("a" * 101, None, "slug"),
        ("0123456789abcdef0123456789abcdef", None, "slug"),
        ("fine", {"rpm": 5}, "settings.rpm"),
        ("fine", {"max_parallel": 0}, "settings.max_parallel"),
        (
            "fine",
            {"budgets": [{"limit_usd": "1", "window": "hourly"}]},
            "settings.budgets[0].window",
        ),
        ("fine", {"guardrails": "pii"}, "settings.guardrails"),
        ("fine", {"guardrails": ["pii", "-x"]}, "settings.guardrails[1]"),
        ("fine", {"guardrails": ["pii", "pii"]}, "settings.guardrails[1]"),
    ],
)
async def test_bad_workspaces_are_refused(
    store: KeyStore, slug: str, settings: dict[str, object] | None, param: str
) -> None:
    with pytest.raises(InvalidField) as caught:
        await store.create_workspace(slug, settings=settings)
    assert caught.value.param == param
    assert [w.slug for w in await store.list_workspaces()] == ["default"]


async def test_a_workspace_update_merges_settings(store: KeyStore, engine: AsyncEngine) -> None:
    team = await store.create_workspace("ops", settings={"rpm_limit": 100, "tpm_limit": 5000})
    async with engine.begin() as conn:  # a setting some other part of the gateway keeps
        await conn.execute(
            workspaces.update()
            .where(workspaces.c.workspace_id == team.workspace_id)
            .values(settings={**team.settings, "theme": "dark"})
        )
    updated = await store.update_workspace(
        "ops", settings={"tpm_limit": None, "budgets": [{"limit_usd": "5", "window": "daily"}]}
    )
    assert updated is not None
    assert updated.limits == WorkspaceLimits(
        budgets=(BudgetLimit(5_000_000, "daily"),), rpm_limit=100
    )
    assert updated.settings["theme"] == "dark"

    renamed = await store.update_workspace(team.workspace_id, name="Operations")
    assert renamed is not None and renamed.name == "Operations" and renamed.limits == updated.limits

    with pytest.raises(InvalidField) as caught:
        await store.update_workspace("ops", settings={"rpm_limit": "many"})
    assert caught.value.param == "settings.rpm_limit"
    with pytest.raises(InvalidField):
        await store.update_workspace("ops", settings={"theme": "light"})
    assert await store.get_workspace("ops") == renamed
    assert await store.update_workspace("missing", name="x") is None


async def test_a_key_carries_its_workspace_limits_and_the_cache_picks_up_changes(
    store: KeyStore,
) -> None:
    team = await store.create_workspace("capped", settings={"max_parallel": 3})
    created = await store.create("worker", workspace_id=team.workspace_id)
    assert created.info.workspace_limits == WorkspaceLimits(max_parallel=3)
    header = f"Bearer {created.plaintext}"

    cached = Authenticator(store, ttl=60)
    fresh = Authenticator(store, ttl=0)
    assert (await cached.authenticate(header)).workspace_limits.max_parallel == 3
    await store.update_workspace("capped", settings={"max_parallel": 9, "rpm_limit": 30})
    await store.update(created.info.key_id, tpm_limit=123)

    stale = await cached.authenticate(header)
    assert stale.workspace_limits.max_parallel == 3 and stale.tpm_limit is None
    current = await fresh.authenticate(header)
    assert current.workspace_limits == WorkspaceLimits(max_parallel=9, rpm_limit=30)
    assert current.tpm_limit == 123


# --- guardrails ---------------------------------------------------------------------------------


async def test_an_update_replaces_or_clears_the_guardrails(
    store: KeyStore, engine: AsyncEngine
) -> None:
    created = (await store.create("guarded", guardrails=["pii"], rpm_limit=3)).info
    replaced = await store.update(created.key_id, guardrails=["injection", "deny.words"])
    assert replaced is not None and replaced.guardrails == ("injection", "deny.words")
    assert (await stored_row(engine, created.key_id)).guardrails == ["injection", "deny.words"]

    renamed = await store.update(created.key_id, name="still guarded")
    assert renamed is not None and renamed.guardrails == ("injection", "deny.words")

    emptied = await store.update(created.key_id, guardrails=[])
    assert emptied is not None and emptied.guardrails == ()
    assert (await stored_row(engine, created.key_id)).guardrails == []

    await store.update(created.key_id, guardrails=["pii"])
    cleared = await store.update(created.key_id, guardrails=None)
    assert cleared is not None and cleared.guardrails == () and cleared.rpm_limit == 3


async def test_workspace_guardrails_are_set_merged_and_cleared(store: KeyStore) -> None:
    team = await store.create_workspace(
        "guarded", settings={"guardrails": ["pii", "injection"], "rpm_limit": 50}
    )
    assert team.limits.guardrails == ("pii", "injection")
    assert team.settings["guardrails"] == ["pii", "injection"]
    assert await store.get_workspace("guarded") == team

    limited = await store.update_workspace("guarded", settings={"tpm_limit": 900})
    assert limited is not None and limited.limits.guardrails == ("pii", "injection")

    replaced = await store.update_workspace("guarded", settings={"guardrails": ["deny"]})
    assert replaced is not None
    assert replaced.limits == WorkspaceLimits(rpm_limit=50, tpm_limit=900, guardrails=("deny",))

    with pytest.raises(InvalidField) as caught:
        await store.update_workspace("guarded", settings={"guardrails": ["ok", "not ok"]})
    assert caught.value.param == "settings.guardrails[1]"
    assert await store.get_workspace("guarded") == replaced

    emptied = await store.update_workspace("guarded", settings={"guardrails": []})
    assert emptied is not None and emptied.limits.guardrails == ()
    await store.update_workspace("guarded", settings={"guardrails": ["deny"]})
    cleared = await store.update_workspace("guarded", settings={"guardrails": None})
    assert cleared is not None and cleared.settings["guardrails"] == []
    assert cleared.limits == WorkspaceLimits(rpm_limit=50, tpm_limit=900)


async def test_the_key_lookup_carries_both_lists_of_guardrails_through_the_cache(
    store: KeyStore,
) -> None:
    team = await store.create_workspace("screened", settings={"guardrails": ["pii"]})
    created = await store.create(
        "screened app", workspace_id=team.workspace_id, guardrails=["injection"]
    )
    assert created.info.guardrails == ("injection",)
    assert created.info.workspace_limits.guardrails == ("pii",)
    found = await store.find_by_hash(hash_key(created.plaintext))
    assert found == created.info

    header = f"Bearer {created.plaintext}"
    cached = Authenticator(store, ttl=60)
    fresh = Authenticator(store, ttl=0)
    first = await cached.authenticate(header)
    assert (first.guardrails, first.workspace_limits.guardrails) == (("injection",), ("pii",))

    await store.update_workspace("screened", settings={"guardrails": ["pii", "deny"]})
    await store.update(created.info.key_id, guardrails=[])
    stale = await cached.authenticate(header)
    assert (stale.guardrails, stale.workspace_limits.guardrails) == (("injection",), ("pii",))
    current = await fresh.authenticate(header)
    assert (current.guardrails, current.workspace_limits.guardrails) == ((), ("pii", "deny"))


async def test_an_expiry_in_the_future_is_active(store: KeyStore) -> None:
    soon = datetime.now(UTC) + timedelta(days=30)
    info = (await store.create("temp", expires_at=soon.replace(tzinfo=None))).info
    assert info.expires_at is not None and info.expires_at.tzinfo is not None
    assert info.active(datetime.now(UTC)) and info.status(datetime.now(UTC)) == "active"
