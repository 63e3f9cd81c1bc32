"""Virtual keys and the master key: created, listed, revoked, looked up by hash.

A key is shown once at creation; the database keeps its SHA-256 and a display prefix only.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID, api_keys, workspaces

KEY_PREFIX = "sk-sw-"
DISPLAY_PREFIX_LENGTH = 12


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    workspace_id: str
    name: str
    role: str  # user | master
    display_prefix: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = {}

    def active(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class CreatedKey(msgspec.Struct, frozen=True):
    info: KeyInfo
    plaintext: str


class UnknownWorkspace(LookupError):
    pass


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def new_key_plaintext() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_LENGTH] + "..."


def _row_to_info(row: sa.Row[Any]) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,
        workspace_id=row.workspace_id,
        name=row.name,
        role=row.role,
        display_prefix=row.display_prefix,
        created_at=_utc(row.created_at),
        revoked_at=_utc(row.revoked_at),
        expires_at=_utc(row.expires_at),
        metadata=row.metadata or {},
    )


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def workspace_id(self, workspace: str) -> str:
        """Resolve a workspace by id or slug."""
        query = sa.select(workspaces.c.workspace_id).where(
            sa.or_(workspaces.c.workspace_id == workspace, workspaces.c.slug == workspace)
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        if found is None:
            raise UnknownWorkspace(f"unknown workspace '{workspace}'")
        return str(found)

    async def ensure_workspace(self, slug: str, name: str | None = None) -> str:
        try:
            return await self.workspace_id(slug)
        except UnknownWorkspace:
            pass
        workspace_id = uuid7_hex()
        async with self._engine.begin() as conn:
            await conn.execute(
                workspaces.insert().values(
                    workspace_id=workspace_id,
                    name=name or slug,
                    slug=slug,
                    settings={},
                    created_at=datetime.now(UTC),
                )
            )
        return workspace_id

    async def create(
        self,
        name: str,
        *,
        workspace_id: str = DEFAULT_WORKSPACE_ID,
        role: str = "user",
        expires_at: datetime | None = None,
        plaintext: str | None = None,
    ) -> CreatedKey:
        plaintext = plaintext or new_key_plaintext()
        info = KeyInfo(
            key_id=uuid7_hex(),
            workspace_id=workspace_id,
            name=name,
            role=role,
            display_prefix=display_prefix(plaintext),
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    key_id=info.key_id,
                    workspace_id=info.workspace_id,
                    name=info.name,
                    key_hash=hash_key(plaintext),
                    display_prefix=info.display_prefix,
                    role=info.role,
                    metadata={},
                    created_at=info.created_at,
                    expires_at=expires_at,
                )
            )
        return CreatedKey(info, plaintext)

    async def find_by_hash(self, key_hash: str) -> KeyInfo | None:
        query = sa.select(api_keys).where(api_keys.c.key_hash == key_hash)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _row_to_info(row)

    async def list(
        self, *, workspace_id: str | None = None, include_revoked: bool = False
    ) -> list[KeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.key_id)
        if workspace_id is not None:
            query = query.where(api_keys.c.workspace_id == workspace_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_info(row) for row in rows]

    async def revoke(self, key: str) -> KeyInfo | None:
        """Revoke by key id, display prefix or plaintext; None when nothing matched."""
        condition = sa.or_(
            api_keys.c.key_id == key,
            api_keys.c.key_hash == hash_key(key),
            api_keys.c.display_prefix == key,
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(api_keys).where(condition))).all()
            if len(rows) != 1:
                return None
            now = datetime.now(UTC)
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == rows[0].key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return await self.find_by_hash(rows[0].key_hash)

    async def has_master_key(self) -> bool:
        query = (
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(api_keys.c.role == "master", api_keys.c.revoked_at.is_(None))
        )
        async with self._engine.connect() as conn:
            return bool((await conn.execute(query)).scalar_one())
