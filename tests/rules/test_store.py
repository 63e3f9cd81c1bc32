"""Rules in the database: versions, diffs, soft delete, rollback and the change marker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa

from rules.store import RuleConflict, RuleNotFound, RuleStore, document_diff
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID, rule_versions

ALICE = "alice"


def rule(rule_id: str = "premium", **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": rule_id,
        "name": f"Rule {rule_id}",
        "priority": 100,
        "enabled": True,
        "continue": False,
        "when": {"tags": {"contains": "premium"}},
        "then": {"route": "gpt-4o"},
    }
    document.update(changes)
    return document


@pytest.fixture
async def store(migrated_database_url: str) -> AsyncIterator[RuleStore]:
    engine = create_engine(migrated_database_url)
    try:
        yield RuleStore(engine)
    finally:
        await engine.dispose()


async def test_create_stores_the_rule_and_its_first_version(store: RuleStore) -> None:
    assert await store.revision() is None
    created = await store.create(rule(), ALICE)

    assert created.version == 1
    assert created.workspace_id == DEFAULT_WORKSPACE_ID
    assert (created.name, created.priority, created.enabled) == ("Rule premium", 100, True)
    assert created.updated_by == ALICE and created.deleted_at is None
    assert created.created_at.tzinfo is not None
    assert created.created_at.utcoffset() == UTC.utcoffset(None)

    fetched = await store.get("premium")
    assert fetched is not None
    assert fetched.document == rule()
    assert fetched.created_at == created.created_at
    assert fetched.created_at.utcoffset() == UTC.utcoffset(None)
    assert [r.rule_id for r in await store.list()] == ["premium"]

    (version,) = await store.history("premium")
    assert (version.version, version.action, version.author) == (1, "create", ALICE)
    assert version.document == rule()
    assert version.diff == {key: {"from": None, "to": value} for key, value in rule().items()}
    assert version.created_at.tzinfo is not None
    assert await store.revision() == version.version_id


async def test_an_id_is_never_reused_even_after_deletion(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    with pytest.raises(RuleConflict, match="premium"):
        await store.create(rule(name="again"), ALICE)
    await store.delete("premium", ALICE)
    with pytest.raises(RuleConflict):
        await store.create(rule(), ALICE)
    assert [v.action for v in await store.history("premium")] == ["delete", "create"]


async def test_create_needs_an_id(store: RuleStore) -> None:
    document = rule()
    del document["id"]
    with pytest.raises(ValueError, match="no id"):
        await store.create(document, ALICE)


async def test_update_bumps_the_version_and_records_only_what_changed(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    updated = await store.update(
        "premium", rule(priority=5, then={"route": "gpt-4o-mini"}), "bob", expected_version=1
    )
    assert (updated.version, updated.priority, updated.updated_by) == (2, 5, "bob")
    assert updated.updated_at >= updated.created_at

    newest, first = await store.history("premium")
    assert (newest.version, newest.action, newest.author) == (2, "update", "bob")
    assert newest.diff == {
        "priority": {"from": 100, "to": 5},
        "then": {"from": {"route": "gpt-4o"}, "to": {"route": "gpt-4o-mini"}},
    }
    assert first.version == 1

    without_name = rule(priority=5, then={"route": "gpt-4o-mini"})
    del without_name["name"]
    renamed = await store.update("premium", without_name, "bob")
    assert renamed.name is None
    assert (await store.history("premium"))[0].diff == {
        "name": {"from": "Rule premium", "to": None}
    }


async def test_the_path_id_wins_over_the_document_id(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    updated = await store.update("premium", rule("other", priority=1), ALICE)
    assert updated.document["id"] == "premium"
    assert await store.get("other") is None


async def test_a_stale_version_is_refused_and_changes_nothing(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    await store.update("premium", rule(priority=1), ALICE, expected_version=1)
    with pytest.raises(RuleConflict, match="version 2"):
        await store.update("premium", rule(priority=50), "bob", expected_version=1)
    current = await store.get("premium")
    assert current is not None and (current.version, current.priority) == (2, 1)
    assert len(await store.history("premium")) == 2


async def test_concurrent_edits_from_the_same_version_let_exactly_one_win(
    store: RuleStore,
) -> None:
    await store.create(rule(), ALICE)
    outcomes = await asyncio.gather(
        *(
            store.update("premium", rule(priority=p), f"editor-{p}", expected_version=1)
            for p in (1, 2, 3)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, RuleConflict) for o in outcomes if o not in winners)
    current = await store.get("premium")
    assert current is not None and current.version == 2
    assert current.priority == winners[0].priority
    assert [v.version for v in await store.history("premium")] == [2, 1]


async def test_unknown_and_deleted_rules_cannot_change(store: RuleStore) -> None:
    with pytest.raises(RuleNotFound):
        await store.update("ghost", rule("ghost"), ALICE)
    with pytest.raises(RuleNotFound):
        await store.set_enabled("ghost", False, ALICE)
    with pytest.raises(RuleNotFound):
        await store.delete("ghost", ALICE)
    with pytest.raises(RuleNotFound):
        await store.rollback("ghost", 1, ALICE)

    await store.create(rule(), ALICE)
    await store.delete("premium", ALICE)
    with pytest.raises(RuleNotFound):
        await store.update("premium", rule(priority=1), ALICE)
    with pytest.raises(RuleNotFound):
        await store.set_enabled("premium", False, ALICE)
    with pytest.raises(RuleNotFound):
        await store.delete("premium", ALICE)


async def test_enable_and_disable_are_versions_and_repeats_are_no_ops(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    await store.create(rule("other", priority=1), ALICE)
    disabled = await store.set_enabled("premium", False, "bob")
    assert (disabled.enabled, disabled.document["enabled"], disabled.version) == (False, False, 2)
    assert [r.rule_id for r in await store.list(include_disabled=False)] == ["other"]
    assert [r.rule_id for r in await store.list()] == ["other", "premium"]

    again = await store.set_enabled("premium", False, "carol")
    assert again.version == 2 and again.updated_by == "bob"

    enabled = await store.set_enabled("premium", True, ALICE)
    assert (enabled.enabled, enabled.version) == (True, 3)
    history = await store.history("premium")
    assert [(v.action, v.author) for v in history] == [
        ("enable", ALICE),
        ("disable", "bob"),
        ("create", ALICE),
    ]
    assert history[1].diff == {"enabled": {"from": True, "to": False}}


async def test_delete_is_soft_and_keeps_the_history(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    deleted = await store.delete("premium", "bob")
    assert deleted.deleted_at is not None and deleted.version == 2
    assert await store.get("premium") is None
    assert await store.list() == []
    kept = await store.get("premium", include_deleted=True)
    assert kept is not None and kept.deleted_at is not None
    assert kept.deleted_at.utcoffset() == UTC.utcoffset(None)
    newest, _ = await store.history("premium")
    assert (newest.action, newest.author, newest.diff) == ("delete", "bob", {})


async def test_rollback_applies_an_old_document_as_a_new_version(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    await store.update("premium", rule(priority=7, then={"deny": {"status": 403}}), ALICE)
    rolled = await store.rollback("premium", 1, "bob")
    assert rolled.version == 3
    assert rolled.document == rule()
    assert rolled.priority == 100
    newest = (await store.history("premium"))[0]
    assert (newest.version, newest.action, newest.author) == (3, "rollback", "bob")
    assert newest.diff == {
        "priority": {"from": 7, "to": 100},
        "then": {"from": {"deny": {"status": 403}}, "to": {"route": "gpt-4o"}},
    }
    with pytest.raises(RuleNotFound, match="version 9"):
        await store.rollback("premium", 9, "bob")


async def test_rollback_undeletes_a_deleted_rule(store: RuleStore) -> None:
    await store.create(rule(), ALICE)
    await store.update("premium", rule(priority=3), ALICE)
    await store.delete("premium", ALICE)
    restored = await store.rollback("premium", 2, "bob")
    assert restored.deleted_at is None and restored.version == 4
    assert restored.priority == 3
    assert [r.rule_id for r in await store.list()] == ["premium"]
    assert [v.action for v in await store.history("premium")] == [
        "rollback",
        "delete",
        "update",
        "create",
    ]


async def test_list_orders_by_priority_then_creation(store: RuleStore) -> None:
    await store.create(rule("late-low", priority=50), ALICE)
    await store.create(rule("first-default"), ALICE)
    await store.create(rule("urgent", priority=1), ALICE)
    await store.create(rule("second-default"), ALICE)
    assert [r.rule_id for r in await store.list()] == [
        "urgent",
        "late-low",
        "first-default",
        "second-default",
    ]
    await store.update("second-default", rule("second-default", priority=0), ALICE)
    assert (await store.list())[0].rule_id == "second-default"


async def test_the_revision_moves_forward_with_every_change(store: RuleStore) -> None:
    seen = [await store.revision()]
    await store.create(rule("a"), ALICE)
    seen.append(await store.revision())
    await store.create(rule("b"), ALICE)
    seen.append(await store.revision())
    for priority in range(1, 20):  # many changes inside the same millisecond
        await store.update("a", rule("a", priority=priority), ALICE)
        seen.append(await store.revision())
    await store.set_enabled("b", False, ALICE)
    seen.append(await store.revision())
    await store.delete("b", ALICE)
    seen.append(await store.revision())
    await store.rollback("b", 1, ALICE)
    seen.append(await store.revision())

    assert seen[0] is None
    marks = [mark for mark in seen[1:] if mark is not None]
    assert len(marks) == len(seen) - 1
    assert marks == sorted(marks) and len(set(marks)) == len(marks)

    unchanged = await store.revision()
    await store.set_enabled("a", True, ALICE)  # already enabled: nothing happens
    assert await store.revision() == unchanged


async def test_history_is_empty_for_an_unknown_rule(store: RuleStore) -> None:
    assert await store.history("ghost") == []


async def test_each_change_writes_exactly_one_version_row(
    store: RuleStore, migrated_database_url: str
) -> None:
    await store.create(rule(), ALICE)
    await store.update("premium", rule(priority=2), ALICE)
    await store.delete("premium", ALICE)
    engine = create_engine(migrated_database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(rule_versions.c.version, rule_versions.c.action).order_by(
                        rule_versions.c.version
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "create"), (2, "update"), (3, "delete")]


def test_diff_lists_changed_added_and_removed_keys() -> None:
    assert document_diff({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4}) == {
        "b": {"from": 2, "to": 5},
        "d": {"from": None, "to": 4},
        "c": {"from": 3, "to": None},
    }
    assert document_diff(None, {"a": 1}) == {"a": {"from": None, "to": 1}}
