"""Workspaces and their virtual keys: created, listed, updated, revoked, looked up by hash.

A key is shown once at creation; the database keeps its SHA-256 and a display prefix only. A key
carries its own limits (allowed models, rpm, tpm, max parallel, budgets), default tags and default
guardrails; its workspace's settings carry limits and guardrails for all of the workspace's keys
together. A lookup by hash reads both in one query, so whoever caches the key caches its
workspace's limits and guardrails with it.

Everything written is validated here (`InvalidField` names the field), whoever the caller is.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from msgspec import UNSET, UnsetType
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.keys.limits import (
    NO_LIMITS,
    WORKSPACE_SETTINGS,
    BudgetLimit,
    InvalidField,
    WorkspaceLimits,
    parse_budgets,
    parse_count,
    parse_guardrail_names,
)
from rules.patterns import PatternError, glob_pattern
from telemetry import times
from telemetry.alerts.builtin_rules import install_builtins
from telemetry.db import as_utc
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable, has_unstorable
from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID, api_keys, workspaces

KEY_PREFIX = "sk-sw-"
DISPLAY_PREFIX_LENGTH = 12
ROLES: tuple[str, ...] = ("user", "master")
MAX_NAME_LENGTH = 200
MAX_MODEL_PATTERNS = 100
MAX_PATTERN_LENGTH = 256
MAX_DEFAULT_TAGS = 32  # as many as a request's x-steerway-tags keeps
MAX_TAG_LENGTH = 64
MAX_METADATA_BYTES = 16_384
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_WORKSPACE_ID = re.compile(r"^[0-9a-f]{32}$")


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
    allowed_models: tuple[str, ...] | None = None  # fnmatch patterns; None: every model
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel: int | None = None
    budgets: tuple[BudgetLimit, ...] = ()
    default_tags: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()  # names of the config's guardrails run on every request
    workspace_limits: WorkspaceLimits = NO_LIMITS  # the key's workspace's, read with the key

    def active(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def allows_model(self, model: str) -> bool:
        """Whether the key may ask for `model` (the name the client sent)."""
        if self.allowed_models is None:
            return True
        return model_matcher(self.allowed_models)(model)

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.active(now) else "expired"


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: str
    slug: str
    name: str
    settings: dict[str, Any]
    created_at: datetime | None
    limits: WorkspaceLimits


class KeyCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How many keys of a workspace are in each state."""

    active: int = 0
    expired: int = 0
    revoked: int = 0

    @property
    def total(self) -> int:
        return self.active + self.expired + self.revoked


class CreatedKey(msgspec.Struct, frozen=True):
    info: KeyInfo
    plaintext: str


class UnknownWorkspace(LookupError):
    pass


class WorkspaceExists(ValueError):
    pass


@functools.lru_cache(maxsize=4096)
def model_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a model name matches one of a key's patterns (shell-style, `fnmatch`'s syntax):
    one RE2 regex for them all, so a single linear match per request."""
    try:
        return remembered(glob_pattern(patterns).fullmatch)
    except PatternError:  # too large together (a hundred long `*a*a…`): one regex each
        each = tuple(glob_pattern((pattern,)).fullmatch for pattern in patterns)
        return remembered(lambda model: any(match(model) for match in each))


_REMEMBERED_NAMES = 1024
_REMEMBERED_LENGTH = 256


def remembered(
    match: Callable[[str], bool],
    names: int = _REMEMBERED_NAMES,
    length: int = _REMEMBERED_LENGTH,
) -> Callable[[str], bool]:
    """`match` with its answers for up to `names` model names of up to `length` characters
    remembered: a request asks about the same few names again and again, and an RE2 search
    gives up the GIL (see `rules.literals`). The memo forgets everything when full, so a
    client sending ever new names cannot grow it."""
    answers: dict[str, bool] = {}

    def allows(model: str) -> bool:
        answer = answers.get(model)
        if answer is None:
            answer = match(model)
            if len(model) <= length:
                if len(answers) >= names:
                    answers.clear()
                answers[model] = answer
        return answer

    return allows


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def new_key_plaintext() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_LENGTH] + "..."


# --- validation -------------------------------------------------------------------------------


def parse_name(value: Any, path: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(path, "expected a non-empty string")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidField(path, f"at most {MAX_NAME_LENGTH} characters")
    _refuse_unstorable(name, path)
    return name


def _refuse_unstorable(value: Any, path: str) -> None:
    """Settings are refused, not escaped, when the database cannot store them as they are:
    escaped, they would mean something else (a tag or a model pattern that never matches)."""
    found = find_unstorable(value, path)
    if found is not None:
        raise InvalidField(found, UNSTORABLE_PROBLEM)


def parse_role(value: Any, path: str = "role") -> str:
    if value not in ROLES:
        raise InvalidField(path, f"expected one of {', '.join(ROLES)}")
    return str(value)


def parse_allowed_models(value: Any, path: str = "allowed_models") -> tuple[str, ...] | None:
    """fnmatch patterns such as `gpt-4o*`; None allows every model."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidField(path, "expected a list of model name patterns, or null for all models")
    if not value:
        raise InvalidField(path, "an empty list would allow no model; use null to allow all")
    if len(value) > MAX_MODEL_PATTERNS:
        raise InvalidField(path, f"at most {MAX_MODEL_PATTERNS} patterns")
    patterns: list[str] = []
    for index, pattern in enumerate(value):
        if not isinstance(pattern, str) or not pattern.strip():
            raise InvalidField(f"{path}[{index}]", "expected a non-empty model name pattern")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise InvalidField(f"{path}[{index}]", f"at most {MAX_PATTERN_LENGTH} characters")
        _refuse_unstorable(pattern, f"{path}[{index}]")
        if pattern.strip() not in patterns:
            patterns.append(pattern.strip())
    return tuple(patterns)


def parse_tags(value: Any, path: str = "default_tags") -> tuple[str, ...]:
    """Tags added to every request made with the key, as `x-steerway-tags` would add them."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidField(path, "expected a list of tags")
    tags: list[str] = []
    for index, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidField(f"{path}[{index}]", "expected a non-empty string")
        if len(tag.strip()) > MAX_TAG_LENGTH or "," in tag:
            raise InvalidField(
                f"{path}[{index}]", f"at most {MAX_TAG_LENGTH} characters and no commas"
            )
        _refuse_unstorable(tag, f"{path}[{index}]")
        if tag.strip() not in tags:
            tags.append(tag.strip())
    if len(tags) > MAX_DEFAULT_TAGS:
        raise InvalidField(path, f"at most {MAX_DEFAULT_TAGS} tags")
    return tuple(tags)


def parse_metadata(value: Any, path: str = "metadata") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidField(path, "expected a JSON object")
    _refuse_unstorable(value, path)
    try:
        encoded = msgspec.json.encode(value)
    except (TypeError, ValueError, RecursionError):
        raise InvalidField(path, "expected a JSON object") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidField(path, f"at most {MAX_METADATA_BYTES} bytes of JSON")
    decoded: dict[str, Any] = msgspec.json.decode(encoded)
    return decoded


def parse_expiry(value: datetime | None, path: str = "expires_at") -> datetime | None:
    """A naive time is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidField(path, "expected a time")
    try:
        return times.within_range(value)
    except times.InvalidTime as error:
        raise InvalidField(path, str(error)) from None


def parse_slug(value: Any, path: str = "slug") -> str:
    if not isinstance(value, str) or not _SLUG.match(value) or _WORKSPACE_ID.match(value):
        raise InvalidField(
            path,
            "expected 1-100 lowercase letters, digits, '-' or '_', starting with a letter or "
            "digit (and not 32 hex digits, which look like a workspace id)",
        )
    return value


def _budgets(value: Sequence[BudgetLimit] | None, path: str = "budgets") -> tuple[BudgetLimit, ...]:
    """Budgets built in code, checked as strictly as those read from JSON."""
    if value is None:
        return ()
    return parse_budgets([budget.to_json() for budget in value], path)


# --- rows -------------------------------------------------------------------------------------


def _key_query() -> sa.Select[Any]:
    return sa.select(api_keys, workspaces.c.settings.label("workspace_settings")).select_from(
        api_keys.outerjoin(workspaces, workspaces.c.workspace_id == api_keys.c.workspace_id)
    )


def _row_to_info(row: sa.Row[Any]) -> KeyInfo:
    allowed = row.allowed_models
    settings = row.workspace_settings
    return KeyInfo(
        key_id=row.key_id,
        workspace_id=row.workspace_id,
        name=row.name,
        role=row.role,
        display_prefix=row.display_prefix,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at),
        expires_at=as_utc(row.expires_at),
        metadata=row.metadata or {},
        allowed_models=None if allowed is None else tuple(allowed),
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        max_parallel=row.max_parallel,
        budgets=parse_budgets(row.budgets),
        default_tags=tuple(row.default_tags or ()),
        guardrails=tuple(row.guardrails or ()),
        workspace_limits=WorkspaceLimits.from_settings(settings) if settings else NO_LIMITS,
    )


def _row_to_workspace(row: sa.Row[Any]) -> Workspace:
    stored = dict(row.settings or {})
    limits = WorkspaceLimits.from_settings(stored)
    return Workspace(
        workspace_id=row.workspace_id,
        slug=row.slug,
        name=row.name,
        settings={**stored, **limits.to_settings()},
        created_at=as_utc(row.created_at),
        limits=limits,
    )


def _workspace_is(workspace: str) -> sa.ColumnElement[bool]:
    """The workspace with this id or slug."""
    return sa.or_(workspaces.c.workspace_id == workspace, workspaces.c.slug == workspace)


def _json_or_null(value: Any) -> Any:
    """SQL NULL for None: a JSON column would otherwise store the JSON value `null`."""
    return sa.null() if value is None else value


# --- the store --------------------------------------------------------------------------------


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # --- workspaces ---

    async def workspace_id(self, workspace: str) -> str:
        """Resolve a workspace by id or slug."""
        found = await self.get_workspace(workspace)
        if found is None:
            raise UnknownWorkspace(f"unknown workspace '{workspace}'")
        return found.workspace_id

    async def ensure_workspace(self, slug: str, name: str | None = None) -> str:
        """The workspace with this id or slug, created (as `slug`) when there is none."""
        try:
            return await self.workspace_id(slug)
        except UnknownWorkspace:
            pass
        try:
            return (await self.create_workspace(slug, name=name)).workspace_id
        except WorkspaceExists:  # made meanwhile by someone else
            return await self.workspace_id(slug)

    async def create_workspace(
        self, slug: str, *, name: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> Workspace:
        """A new workspace. `settings` may hold budgets, rpm_limit, tpm_limit, max_parallel and
        guardrails."""
        slug = parse_slug(slug)
        name = parse_name(slug if name is None else name)
        stored, _ = _merged_settings({}, settings or {})
        workspace_id = uuid7_hex()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    workspaces.insert().values(
                        workspace_id=workspace_id,
                        name=name,
                        slug=slug,
                        settings=stored,
                        created_at=datetime.now(UTC),
                    )
                )
        except sa_exc.IntegrityError:
            raise WorkspaceExists(f"a workspace with slug '{slug}' already exists") from None
        await install_builtins(self._engine, [workspace_id])
        created = await self.get_workspace(workspace_id)
        assert created is not None
        return created

    async def get_workspace(self, workspace: str) -> Workspace | None:
        """A workspace by id or slug."""
        if has_unstorable(workspace):
            return None  # no id or slug holds one; the database would refuse the query
        query = sa.select(workspaces).where(_workspace_is(workspace))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _row_to_workspace(row)

    async def list_workspaces(self) -> list[Workspace]:
        query = sa.select(workspaces).order_by(workspaces.c.created_at, workspaces.c.workspace_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_workspace(row) for row in rows]

    async def update_workspace(
        self,
        workspace: str,
        *,
        name: str | UnsetType = UNSET,
        settings: Mapping[str, Any] | UnsetType = UNSET,
    ) -> Workspace | None:
        """Rename and/or change settings; `settings` is merged (a None value removes a limit or
        the guardrails; a list replaces the stored one). None when there is no such workspace."""
        values: dict[str, Any] = {}
        if name is not UNSET:
            values["name"] = parse_name(name)
        if has_unstorable(workspace):
            return None
        async with self._engine.begin() as conn:
            query = sa.select(workspaces).where(_workspace_is(workspace))
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            if settings is not UNSET:
                values["settings"], _ = _merged_settings(dict(row.settings or {}), settings)
            if values:
                await conn.execute(
                    workspaces.update()
                    .where(workspaces.c.workspace_id == row.workspace_id)
                    .values(**values)
                )
        return await self.get_workspace(row.workspace_id)

    async def workspace_limits(self, workspace_id: str) -> WorkspaceLimits:
        found = await self.get_workspace(workspace_id)
        if found is None:
            raise UnknownWorkspace(f"unknown workspace '{workspace_id}'")
        return found.limits

    # --- keys ---

    async def create(
        self,
        name: str,
        *,
        workspace_id: str = DEFAULT_WORKSPACE_ID,
        role: str = "user",
        expires_at: datetime | None = None,
        plaintext: str | None = None,
        allowed_models: Sequence[str] | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        max_parallel: int | None = None,
        budgets: Sequence[BudgetLimit] = (),
        default_tags: Sequence[str] = (),
        guardrails: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> CreatedKey:
        """A new key in an existing workspace (`UnknownWorkspace` otherwise)."""
        plaintext = plaintext or new_key_plaintext()
        info = KeyInfo(
            key_id=uuid7_hex(),
            workspace_id=workspace_id,
            name=parse_name(name),
            role=parse_role(role),
            display_prefix=display_prefix(plaintext),
            created_at=datetime.now(UTC),
            expires_at=parse_expiry(expires_at),
            metadata=parse_metadata(metadata),
            allowed_models=parse_allowed_models(allowed_models),
            rpm_limit=parse_count(rpm_limit, "rpm_limit"),
            tpm_limit=parse_count(tpm_limit, "tpm_limit"),
            max_parallel=parse_count(max_parallel, "max_parallel"),
            budgets=_budgets(budgets),
            default_tags=parse_tags(default_tags),
            guardrails=parse_guardrail_names(guardrails),
        )
        async with self._engine.begin() as conn:
            settings = await _workspace_settings(conn, workspace_id)
            await conn.execute(
                api_keys.insert().values(
                    key_id=info.key_id,
                    workspace_id=info.workspace_id,
                    name=info.name,
                    key_hash=hash_key(plaintext),
                    display_prefix=info.display_prefix,
                    role=info.role,
                    metadata=info.metadata,
                    created_at=info.created_at,
                    expires_at=info.expires_at,
                    allowed_models=_json_or_null(
                        None if info.allowed_models is None else list(info.allowed_models)
                    ),
                    rpm_limit=info.rpm_limit,
                    tpm_limit=info.tpm_limit,
                    max_parallel=info.max_parallel,
                    budgets=[budget.to_json() for budget in info.budgets],
                    default_tags=list(info.default_tags),
                    guardrails=list(info.guardrails),
                )
            )
        limits = WorkspaceLimits.from_settings(settings) if settings else NO_LIMITS
        return CreatedKey(msgspec.structs.replace(info, workspace_limits=limits), plaintext)

    async def update(
        self,
        key_id: str,
        *,
        name: str | UnsetType = UNSET,
        role: str | UnsetType = UNSET,
        expires_at: datetime | UnsetType | None = UNSET,
        allowed_models: Sequence[str] | UnsetType | None = UNSET,
        rpm_limit: int | UnsetType | None = UNSET,
        tpm_limit: int | UnsetType | None = UNSET,
        max_parallel: int | UnsetType | None = UNSET,
        budgets: Sequence[BudgetLimit] | UnsetType | None = UNSET,
        default_tags: Sequence[str] | UnsetType | None = UNSET,
        guardrails: Sequence[str] | UnsetType | None = UNSET,
        metadata: Mapping[str, Any] | UnsetType | None = UNSET,
    ) -> KeyInfo | None:
        """Change only what is given; a list replaces the stored one; None clears (no expiry,
        every model, no limit, no budgets, no tags, no guardrails, empty metadata). None when
        there is no such key."""
        values: dict[str, Any] = {}
        if name is not UNSET:
            values["name"] = parse_name(name)
        if role is not UNSET:
            values["role"] = parse_role(role)
        if expires_at is not UNSET:
            values["expires_at"] = parse_expiry(expires_at)
        if allowed_models is not UNSET:
            patterns = parse_allowed_models(allowed_models)
            values["allowed_models"] = _json_or_null(None if patterns is None else list(patterns))
        for field, value in (
            ("rpm_limit", rpm_limit),
            ("tpm_limit", tpm_limit),
            ("max_parallel", max_parallel),
        ):
            if value is not UNSET:
                values[field] = parse_count(value, field)
        if budgets is not UNSET:
            values["budgets"] = [budget.to_json() for budget in _budgets(budgets)]
        if default_tags is not UNSET:
            values["default_tags"] = list(parse_tags(default_tags))
        if guardrails is not UNSET:
            values["guardrails"] = list(parse_guardrail_names(guardrails))
        if metadata is not UNSET:
            values["metadata"] = parse_metadata(metadata)
        if has_unstorable(key_id):
            return None
        if values:
            async with self._engine.begin() as conn:
                await conn.execute(
                    api_keys.update().where(api_keys.c.key_id == key_id).values(**values)
                )
        return await self.get(key_id)

    async def get(self, key_id: str) -> KeyInfo | None:
        if has_unstorable(key_id):
            return None
        return await self._one(api_keys.c.key_id == key_id)

    async def find_by_hash(self, key_hash: str) -> KeyInfo | None:
        return await self._one(api_keys.c.key_hash == key_hash)

    async def _one(self, condition: sa.ColumnElement[bool]) -> KeyInfo | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_key_query().where(condition))).first()
        return None if row is None else _row_to_info(row)

    async def list(
        self, *, workspace_id: str | None = None, include_revoked: bool = False
    ) -> list[KeyInfo]:
        query = _key_query().order_by(api_keys.c.key_id)
        if workspace_id is not None:
            query = query.where(api_keys.c.workspace_id == workspace_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row_to_info(row) for row in rows]

    async def count_by_workspace(self, now: datetime) -> dict[str, KeyCounts]:
        """Keys per workspace and state, for the workspaces that have any."""
        revoked = api_keys.c.revoked_at.is_not(None)
        expired = sa.and_(
            api_keys.c.revoked_at.is_(None),
            api_keys.c.expires_at.is_not(None),
            api_keys.c.expires_at <= now,
        )
        query = sa.select(
            api_keys.c.workspace_id,
            sa.func.count().label("total"),
            sa.func.sum(sa.case((revoked, 1), else_=0)).label("revoked"),
            sa.func.sum(sa.case((expired, 1), else_=0)).label("expired"),
        ).group_by(api_keys.c.workspace_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            row.workspace_id: KeyCounts(
                active=int(row.total) - int(row.revoked) - int(row.expired),
                expired=int(row.expired),
                revoked=int(row.revoked),
            )
            for row in rows
        }

    async def revoke(self, key: str) -> KeyInfo | None:
        """Revoke by key id, display prefix or plaintext; None when nothing matched."""
        if has_unstorable(key):
            return None
        condition = sa.or_(
            api_keys.c.key_id == key,
            api_keys.c.key_hash == hash_key(key),
            api_keys.c.display_prefix == key,
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(api_keys.c.key_id).where(condition))).all()
            if len(rows) != 1:
                return None
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == rows[0].key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return await self.get(rows[0].key_id)

    async def has_master_key(self) -> bool:
        query = (
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(api_keys.c.role == "master", api_keys.c.revoked_at.is_(None))
        )
        async with self._engine.connect() as conn:
            return bool((await conn.execute(query)).scalar_one())


async def _workspace_settings(conn: AsyncConnection, workspace_id: str) -> dict[str, Any]:
    query = sa.select(workspaces.c.settings).where(workspaces.c.workspace_id == workspace_id)
    found = (await conn.execute(query)).first()
    if found is None:
        raise UnknownWorkspace(f"unknown workspace '{workspace_id}'")
    return dict(found.settings or {})


def _merged_settings(
    current: dict[str, Any], changes: Mapping[str, Any]
) -> tuple[dict[str, Any], WorkspaceLimits]:
    """`current` with `changes` applied and the limits and guardrails in it validated. Changes
    may only touch those settings; other settings already stored are kept as they are."""
    if not isinstance(changes, Mapping):
        raise InvalidField("settings", "expected an object")
    unknown = sorted(set(changes) - set(WORKSPACE_SETTINGS))
    if unknown:
        raise InvalidField(
            f"settings.{unknown[0]}",
            f"unknown setting; expected one of {', '.join(WORKSPACE_SETTINGS)}",
        )
    merged = {**current, **changes}
    limits = WorkspaceLimits.from_settings(merged)
    others = {key: value for key, value in current.items() if key not in WORKSPACE_SETTINGS}
    return {**others, **limits.to_settings()}, limits
