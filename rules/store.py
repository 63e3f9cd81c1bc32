"""Steering rules kept in the database: versioned, soft-deleted, every change recorded.

Each change updates the `rules` row and appends its `rule_versions` row in one transaction. The
row update is a compare-and-set on the rule's version, so of two editors racing on one rule only
one wins; the other gets `RuleConflict`.

`revision()` is the newest version id, which workers poll to notice changes. For that to be
sound, version ids must be handed out in commit order: each change first takes the write lock
(a transaction-level advisory lock on Postgres; on SQLite, writing the rules row takes the
database's single write lock), and only then picks an id greater than every id already stored.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.db import as_utc
from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID, rule_versions, rules

ACTIONS = ("create", "update", "enable", "disable", "delete", "rollback")
DEFAULT_PRIORITY = 100
# Any fixed 64-bit number: the key of the Postgres advisory lock that serialises rule changes.
_WRITE_LOCK_KEY = 0x5374_6565_7252_756C

Revise = Callable[[dict[str, Any]], dict[str, Any]]


class RuleNotFound(LookupError):
    """No such rule (or it is deleted), or no such version of it."""


class RuleConflict(Exception):
    """The id is taken, or the rule changed since the version the caller read."""


class StoredRule(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    workspace_id: str
    name: str | None
    priority: int
    enabled: bool
    document: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str | None
    deleted_at: datetime | None = None


class RuleVersion(msgspec.Struct, frozen=True, kw_only=True):
    version_id: str
    rule_id: str
    workspace_id: str
    version: int
    action: str
    document: dict[str, Any]
    diff: dict[str, dict[str, Any]]
    author: str | None
    created_at: datetime


def document_diff(
    old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """`{key: {"from": old, "to": new}}` for each top-level key whose value differs."""
    before = old or {}
    keys = [*new, *(key for key in before if key not in new)]
    return {
        key: {"from": before.get(key), "to": new.get(key)}
        for key in keys
        if key not in before or key not in new or before[key] != new[key]
    }


def _utc(value: datetime) -> datetime:
    converted = as_utc(value)
    assert converted is not None
    return converted


def _to_rule(row: sa.Row[Any]) -> StoredRule:
    return StoredRule(
        rule_id=row.rule_id,
        workspace_id=row.workspace_id,
        name=row.name,
        priority=row.priority,
        enabled=row.enabled,
        document=dict(row.document),
        version=row.version,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        updated_by=row.updated_by,
        deleted_at=as_utc(row.deleted_at),
    )


def _to_version(row: sa.Row[Any]) -> RuleVersion:
    return RuleVersion(
        version_id=row.version_id,
        rule_id=row.rule_id,
        workspace_id=row.workspace_id,
        version=row.version,
        action=row.action,
        document=dict(row.document),
        diff=dict(row.diff),
        author=row.author,
        created_at=_utc(row.created_at),
    )


def _columns(document: Mapping[str, Any]) -> dict[str, Any]:
    """The columns mirrored from the document, so lists can sort and filter in SQL."""
    name = document.get("name")
    return {
        "name": None if name is None else str(name),
        "priority": int(document.get("priority", DEFAULT_PRIORITY)),
        "enabled": bool(document.get("enabled", True)),
        "document": dict(document),
    }


def _successor(version_id: str) -> str:
    return f"{int(version_id, 16) + 1:032x}"


class RuleStore:
    def __init__(self, engine: AsyncEngine, *, workspace_id: str = DEFAULT_WORKSPACE_ID) -> None:
        self._engine = engine
        self._workspace_id = workspace_id

    # --- reads ----------------------------------------------------------------------------------

    async def list(self, include_disabled: bool = True) -> builtins.list[StoredRule]:
        """Rules not deleted, by priority then creation time."""
        query = (
            sa.select(rules)
            .where(rules.c.workspace_id == self._workspace_id, rules.c.deleted_at.is_(None))
            .order_by(rules.c.priority, rules.c.created_at, rules.c.rule_id)
        )
        if not include_disabled:
            query = query.where(rules.c.enabled.is_(True))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_rule(row) for row in rows]

    async def get(self, rule_id: str, *, include_deleted: bool = False) -> StoredRule | None:
        async with self._engine.connect() as conn:
            row = await self._row(conn, rule_id)
        if row is None or (row.deleted_at is not None and not include_deleted):
            return None
        return _to_rule(row)

    async def history(self, rule_id: str) -> builtins.list[RuleVersion]:
        """Every version of the rule, newest first; deleted rules keep theirs."""
        query = (
            sa.select(rule_versions)
            .where(
                rule_versions.c.rule_id == rule_id,
                rule_versions.c.workspace_id == self._workspace_id,
            )
            .order_by(rule_versions.c.version.desc())
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_version(row) for row in rows]

    async def revision(self) -> str | None:
        """The newest version id of any rule: it changes whenever any rule does."""
        query = sa.select(sa.func.max(rule_versions.c.version_id)).where(
            rule_versions.c.workspace_id == self._workspace_id
        )
        async with self._engine.connect() as conn:
            newest = (await conn.execute(query)).scalar_one_or_none()
        return None if newest is None else str(newest)

    # --- changes --------------------------------------------------------------------------------

    async def create(self, document: Mapping[str, Any], author: str | None) -> StoredRule:
        """Store a new rule (validated and normalised by the caller; it carries its "id")."""
        rule_id = document.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            raise ValueError("the rule document has no id")
        now = datetime.now(UTC)
        stored = StoredRule(
            rule_id=rule_id,
            workspace_id=self._workspace_id,
            version=1,
            created_at=now,
            updated_at=now,
            updated_by=author,
            **_columns(document),
        )
        try:
            async with self._engine.begin() as conn:
                await self._lock(conn)
                await conn.execute(rules.insert().values(msgspec.structs.asdict(stored)))
                await self._append_version(conn, stored, "create", document_diff(None, document))
        except IntegrityError as error:
            raise RuleConflict(f"a rule with id '{rule_id}' already exists") from error
        return stored

    async def update(
        self,
        rule_id: str,
        document: Mapping[str, Any],
        author: str | None,
        *,
        expected_version: int | None = None,
    ) -> StoredRule:
        """Replace the rule's document; with `expected_version`, only if it is still current."""
        return await self._change(
            rule_id,
            lambda _: {**document, "id": rule_id},
            "update",
            author,
            expected_version=expected_version,
        )

    async def set_enabled(self, rule_id: str, enabled: bool, author: str | None) -> StoredRule:
        return await self._change(
            rule_id,
            lambda current: {**current, "enabled": enabled},
            "enable" if enabled else "disable",
            author,
        )

    async def delete(self, rule_id: str, author: str | None) -> StoredRule:
        """Mark the rule deleted; it leaves every list but keeps its history."""
        return await self._change(rule_id, dict, "delete", author, deleted=True)

    async def rollback(self, rule_id: str, version: int, author: str | None) -> StoredRule:
        """Apply an earlier version's document as a new version; undeletes a deleted rule."""
        old = await self.version(rule_id, version)
        if old is None:
            raise RuleNotFound(f"rule '{rule_id}' has no version {version}")
        return await self._change(
            rule_id,
            lambda _: {**old.document, "id": rule_id},
            "rollback",
            author,
            deleted=False,
        )

    async def version(self, rule_id: str, version: int) -> RuleVersion | None:
        query = sa.select(rule_versions).where(
            rule_versions.c.rule_id == rule_id,
            rule_versions.c.workspace_id == self._workspace_id,
            rule_versions.c.version == version,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _to_version(row)

    # --- internals ------------------------------------------------------------------------------

    async def _row(self, conn: AsyncConnection, rule_id: str) -> sa.Row[Any] | None:
        query = sa.select(rules).where(
            rules.c.rule_id == rule_id, rules.c.workspace_id == self._workspace_id
        )
        return (await conn.execute(query)).first()

    async def _change(
        self,
        rule_id: str,
        revise: Revise,
        action: str,
        author: str | None,
        *,
        expected_version: int | None = None,
        deleted: bool | None = None,
    ) -> StoredRule:
        """Derive the new document from the current one; write both rows unless nothing changed.

        `deleted`: True marks the rule deleted, False also accepts a deleted rule and undeletes it,
        None leaves a live rule live and refuses a deleted one.
        """
        try:
            async with self._engine.begin() as conn:
                await self._lock(conn)
                row = await self._row(conn, rule_id)
                if row is None or (row.deleted_at is not None and deleted is not False):
                    raise RuleNotFound(f"no rule with id '{rule_id}'")
                current = _to_rule(row)
                if expected_version is not None and expected_version != current.version:
                    raise RuleConflict(
                        f"rule '{rule_id}' is at version {current.version}, "
                        f"not {expected_version}: reload it and apply your change again"
                    )
                now = datetime.now(UTC)
                document = revise(current.document)
                deleted_at = current.deleted_at
                if deleted is not None:
                    deleted_at = now if deleted else None
                if document == current.document and deleted_at == current.deleted_at:
                    return current
                changed = msgspec.structs.replace(
                    current,
                    version=current.version + 1,
                    updated_at=now,
                    updated_by=author,
                    deleted_at=deleted_at,
                    **_columns(document),
                )
                values = msgspec.structs.asdict(changed)
                del values["rule_id"], values["workspace_id"], values["created_at"]
                result = await conn.execute(
                    rules.update()
                    .where(rules.c.rule_id == rule_id, rules.c.version == current.version)
                    .values(values)
                )
                if result.rowcount != 1:
                    raise RuleConflict(f"rule '{rule_id}' changed meanwhile: reload it and retry")
                await self._append_version(
                    conn, changed, action, document_diff(current.document, document)
                )
        except IntegrityError as error:
            raise RuleConflict(
                f"rule '{rule_id}' changed meanwhile: reload it and retry"
            ) from error
        return changed

    async def _lock(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_WRITE_LOCK_KEY)))

    async def _append_version(
        self,
        conn: AsyncConnection,
        rule: StoredRule,
        action: str,
        diff: dict[str, dict[str, Any]],
    ) -> None:
        newest = (
            await conn.execute(sa.select(sa.func.max(rule_versions.c.version_id)))
        ).scalar_one_or_none()
        version_id = uuid7_hex()
        if newest is not None and version_id <= newest:
            version_id = _successor(str(newest))
        await conn.execute(
            rule_versions.insert().values(
                version_id=version_id,
                rule_id=rule.rule_id,
                workspace_id=rule.workspace_id,
                version=rule.version,
                action=action,
                document=rule.document,
                diff=diff,
                author=rule.updated_by,
                created_at=rule.updated_at,
            )
        )
