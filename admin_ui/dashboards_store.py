"""Saved dashboards in the database (`dashboards`): read, list, create, change, delete.

A dashboard belongs to one workspace. A shared one is seen by everyone who sees the workspace;
a private one by its owner only: the user who made it, or, for one made with an admin key
(`owner_user_id` NULL), the workspace's admin keys. Operators see every one (`Readers`).

Every change is written with its audit row in one transaction. A change names the version it
was made from: when the stored version has moved on, `DashboardConflict` is raised and nothing
is written (the UPDATE itself is conditional on the version, so two writers racing cannot both
win).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from admin_ui.audit import Actor, record_change
from admin_ui.dashboard_model import Dashboard, Panel
from telemetry.db import as_utc
from telemetry.ids import uuid7_hex
from telemetry.schema import dashboards


class DashboardNotFound(LookupError):
    pass


class DashboardConflict(ValueError):
    """The dashboard changed since the version the change was made from."""

    def __init__(self, dashboard_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"dashboard '{dashboard_id}' is at version {current}, not {expected}: "
            "it was changed since you read it; read it again and redo your change"
        )
        self.expected = expected
        self.current = current


class StoredDashboard(msgspec.Struct, frozen=True, kw_only=True):
    dashboard_id: str
    workspace_id: str
    owner_user_id: str | None
    """None: made with an admin key."""
    dashboard: Dashboard
    shared: bool
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class Readers:
    """Whose private dashboards a reader sees, besides every shared one."""

    every_private: bool = False
    """Operators: all of them."""
    user_id: str | None = None
    """A console user: their own."""
    keys: bool = False
    """An admin key: those made with admin keys."""

    def sees(self, stored: StoredDashboard) -> bool:
        if stored.shared or self.every_private:
            return True
        if stored.owner_user_id is None:
            return self.keys
        return stored.owner_user_id == self.user_id

    def condition(self) -> sa.ColumnElement[bool]:
        """`sees` as a WHERE clause."""
        if self.every_private:
            return sa.true()
        either: list[sa.ColumnElement[bool]] = [dashboards.c.shared.is_(True)]
        if self.user_id is not None:
            either.append(dashboards.c.owner_user_id == self.user_id)
        if self.keys:
            either.append(dashboards.c.owner_user_id.is_(None))
        return sa.or_(*either)


def panels_json(dashboard: Dashboard) -> list[Any]:
    return list(msgspec.to_builtins(dashboard.panels))


def audit_item(stored: StoredDashboard | None) -> dict[str, Any] | None:
    """A dashboard as the audit log keeps it."""
    if stored is None:
        return None
    return {
        "id": stored.dashboard_id,
        "workspace_id": stored.workspace_id,
        "owner_user_id": stored.owner_user_id,
        "name": stored.dashboard.name,
        "description": stored.dashboard.description,
        "panels": panels_json(stored.dashboard),
        "shared": stored.shared,
        "version": stored.version,
    }


def _stored(row: sa.Row[Any]) -> StoredDashboard:
    created, updated = as_utc(row.created_at), as_utc(row.updated_at)
    assert created is not None and updated is not None
    dashboard = Dashboard(
        name=row.name,
        description=row.description,
        panels=msgspec.convert(row.panels, list[Panel]),
    )
    return StoredDashboard(
        dashboard_id=row.dashboard_id,
        workspace_id=row.workspace_id,
        owner_user_id=row.owner_user_id,
        dashboard=dashboard,
        shared=bool(row.shared),
        created_at=created,
        updated_at=updated,
        version=int(row.version),
    )


async def _read(conn: AsyncConnection, dashboard_id: str) -> StoredDashboard | None:
    query = sa.select(dashboards).where(dashboards.c.dashboard_id == dashboard_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _stored(row)


async def _audit(
    conn: AsyncConnection,
    action: str,
    before: StoredDashboard | None,
    after: StoredDashboard | None,
    actor: Actor,
    address: str | None,
) -> None:
    subject = after or before
    assert subject is not None
    await record_change(
        conn,
        actor=actor,
        action=action,
        target_type="dashboard",
        target_id=subject.dashboard_id,
        workspace_id=subject.workspace_id,
        before=audit_item(before),
        after=audit_item(after),
        address=address,
    )


class DashboardStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, dashboard_id: str) -> StoredDashboard | None:
        async with self._engine.connect() as conn:
            return await _read(conn, dashboard_id)

    async def list(
        self, workspace_ids: Collection[str] | None, readers: Readers
    ) -> list[StoredDashboard]:
        """The dashboards of `workspace_ids` (None: every workspace) `readers` sees, by name."""
        query = sa.select(dashboards).where(readers.condition())
        if workspace_ids is not None:
            query = query.where(dashboards.c.workspace_id.in_(sorted(workspace_ids)))
        query = query.order_by(dashboards.c.name, dashboards.c.dashboard_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(row) for row in rows]

    async def create(
        self,
        *,
        workspace_id: str,
        owner_user_id: str | None,
        dashboard: Dashboard,
        shared: bool,
        actor: Actor,
        address: str | None = None,
    ) -> StoredDashboard:
        now = datetime.now(UTC)
        dashboard_id = uuid7_hex()
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.insert(dashboards).values(
                    dashboard_id=dashboard_id,
                    workspace_id=workspace_id,
                    owner_user_id=owner_user_id,
                    name=dashboard.name,
                    description=dashboard.description,
                    panels=panels_json(dashboard),
                    shared=shared,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            created = await _read(conn, dashboard_id)
            assert created is not None
            await _audit(conn, "dashboard.create", None, created, actor, address)
        return created

    async def update(
        self,
        dashboard_id: str,
        *,
        dashboard: Dashboard,
        shared: bool,
        expected_version: int,
        actor: Actor,
        address: str | None = None,
    ) -> StoredDashboard:
        """The dashboard replaced by `dashboard` (and `shared`), one version on; unchanged (and
        no audit row) when nothing differs."""
        async with self._engine.begin() as conn:
            before = await _read(conn, dashboard_id)
            if before is None:
                raise DashboardNotFound(dashboard_id)
            if before.version != expected_version:
                raise DashboardConflict(dashboard_id, expected_version, before.version)
            if before.dashboard == dashboard and before.shared == shared:
                return before
            result = await conn.execute(
                sa.update(dashboards)
                .where(
                    dashboards.c.dashboard_id == dashboard_id,
                    dashboards.c.version == expected_version,
                )
                .values(
                    name=dashboard.name,
                    description=dashboard.description,
                    panels=panels_json(dashboard),
                    shared=shared,
                    updated_at=datetime.now(UTC),
                    version=expected_version + 1,
                )
            )
            after = await _read(conn, dashboard_id)
            if result.rowcount != 1 or after is None:
                current = after.version if after is not None else expected_version
                raise DashboardConflict(dashboard_id, expected_version, current)
            await _audit(conn, "dashboard.update", before, after, actor, address)
        return after

    async def delete(
        self,
        dashboard_id: str,
        *,
        expected_version: int | None = None,
        actor: Actor,
        address: str | None = None,
    ) -> StoredDashboard:
        """Remove the dashboard (at `expected_version`, when given); what it was."""
        async with self._engine.begin() as conn:
            before = await _read(conn, dashboard_id)
            if before is None:
                raise DashboardNotFound(dashboard_id)
            if expected_version is not None and before.version != expected_version:
                raise DashboardConflict(dashboard_id, expected_version, before.version)
            result = await conn.execute(
                sa.delete(dashboards).where(
                    dashboards.c.dashboard_id == dashboard_id,
                    dashboards.c.version == before.version,
                )
            )
            if result.rowcount != 1:
                current = await _read(conn, dashboard_id)
                if current is None:
                    raise DashboardNotFound(dashboard_id)
                raise DashboardConflict(dashboard_id, before.version, current.version)
            await _audit(conn, "dashboard.delete", before, None, actor, address)
        return before
