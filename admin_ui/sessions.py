"""Console sessions, kept on the server: in the database (`console_sessions`) or in Redis.

The browser holds a random token in the `steerway_session` cookie; the store keeps its SHA-256
only, with the session's CSRF token and times. A session ends when it has not been used for
the idle time, at its absolute expiry, at sign-out, and (checked by the caller, see
`admin_ui.console_auth`) when its user is disabled or changes password.

Use refreshes `last_seen_at`, but at most every `touch_interval` (a write per console request
would be wasted), so the idle time is kept to within that interval.

In Redis a session is a hash under `steerway:console:session:<sha256>` that expires by itself
when the session would; its times are also checked here, so a clock read by the caller decides.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, cast

import redis.asyncio as redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.redis_errors import redis_answers
from telemetry.db import as_utc
from telemetry.schema import console_sessions

REDIS_PREFIX: Final = "steerway:console:session:"
MAX_TOKEN_LENGTH: Final = 128
MAX_USER_AGENT: Final = 256
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta
    lifetime: timedelta

    @property
    def touch_interval(self) -> timedelta:
        return min(timedelta(seconds=60), self.idle / 4)

    def over(self, session: Session, now: datetime) -> bool:
        return now >= session.expires_at or now - session.last_seen_at >= self.idle

    def stale(self, session: Session, now: datetime) -> bool:
        return now - session.last_seen_at >= self.touch_interval


class SessionStore(Protocol):
    policy: SessionPolicy

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(
        self, user_id: str, *, address: str | None, user_agent: str | None
    ) -> tuple[str, Session]:
        """A new session and the token for its cookie (shown nowhere else)."""
        ...

    async def find(self, token: str) -> Session | None:
        """The live session of a cookie's token (refreshed), or None."""
        ...

    async def delete(self, token: str) -> None: ...


def _new(user_id: str, policy: SessionPolicy, now: datetime) -> tuple[str, Session]:
    token = secrets.token_urlsafe(32)
    session = Session(
        token_hash=token_digest(token),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.lifetime,
    )
    return token, session


def _plausible(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


class DatabaseSessions:
    def __init__(self, engine: AsyncEngine, policy: SessionPolicy, clock: Clock = _utc_now):
        self._engine = engine
        self.policy = policy
        self._clock = clock

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create(
        self, user_id: str, *, address: str | None, user_agent: str | None
    ) -> tuple[str, Session]:
        now = self._clock()
        token, session = _new(user_id, self.policy, now)
        async with self._engine.begin() as conn:
            # Sessions that ended without a sign-out leave here, a few at each sign-in.
            await conn.execute(
                sa.delete(console_sessions).where(
                    sa.or_(
                        console_sessions.c.expires_at <= now,
                        console_sessions.c.last_seen_at <= now - self.policy.idle,
                    )
                )
            )
            await conn.execute(
                sa.insert(console_sessions).values(
                    token_hash=session.token_hash,
                    user_id=user_id,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=session.expires_at,
                    address=address[:64] if address else None,
                    user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
                )
            )
        return token, session

    async def find(self, token: str) -> Session | None:
        if not _plausible(token):
            return None
        digest = token_digest(token)
        where = console_sessions.c.token_hash == digest
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(console_sessions).where(where))).first()
        if row is None:
            return None
        session = _from_row(row)
        now = self._clock()
        if self.policy.over(session, now):
            await self._delete(digest)
            return None
        if self.policy.stale(session, now):
            async with self._engine.begin() as conn:
                await conn.execute(
                    sa.update(console_sessions).where(where).values(last_seen_at=now)
                )
        return session

    async def delete(self, token: str) -> None:
        if _plausible(token):
            await self._delete(token_digest(token))

    async def _delete(self, digest: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(console_sessions).where(console_sessions.c.token_hash == digest)
            )


def _from_row(row: sa.Row[Any]) -> Session:
    times = [as_utc(row.created_at), as_utc(row.last_seen_at), as_utc(row.expires_at)]
    created, seen, expires = (value or datetime.min.replace(tzinfo=UTC) for value in times)
    return Session(
        token_hash=row.token_hash,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        created_at=created,
        last_seen_at=seen,
        expires_at=expires,
    )


class RedisSessions:
    def __init__(
        self,
        url: str,
        policy: SessionPolicy,
        clock: Clock = _utc_now,
        *,
        timeout: float = 1.0,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        self._url = url
        self.policy = policy
        self._clock = clock
        self._timeout = timeout
        self._prefix = prefix
        self._redis: redis.Redis | None = None

    async def start(self) -> None:
        self._redis = redis.Redis.from_url(
            self._url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            raise RuntimeError("the session store is not started")
        return self._redis

    def _ttl_ms(self, session: Session, now: datetime) -> int:
        left = min(session.expires_at - now, self.policy.idle)
        return max(1, int(left.total_seconds() * 1000) + 1)

    async def create(
        self, user_id: str, *, address: str | None, user_agent: str | None
    ) -> tuple[str, Session]:
        with redis_answers():
            return await self._create(user_id, address=address, user_agent=user_agent)

    async def _create(
        self, user_id: str, *, address: str | None, user_agent: str | None
    ) -> tuple[str, Session]:
        now = self._clock()
        token, session = _new(user_id, self.policy, now)
        key = self._prefix + session.token_hash
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "user_id": user_id,
                    "csrf_token": session.csrf_token,
                    "created_at": now.timestamp(),
                    "last_seen_at": now.timestamp(),
                    "expires_at": session.expires_at.timestamp(),
                    "address": (address or "")[:64],
                    "user_agent": (user_agent or "")[:MAX_USER_AGENT],
                },
            )
            pipe.pexpire(key, self._ttl_ms(session, now))
            await pipe.execute()
        return token, session

    async def find(self, token: str) -> Session | None:
        with redis_answers():
            return await self._find(token)

    async def _find(self, token: str) -> Session | None:
        if not _plausible(token):
            return None
        digest = token_digest(token)
        key = self._prefix + digest
        found = cast("dict[bytes, bytes]", await self._client().hgetall(key))
        if not found or b"user_id" not in found:
            return None
        session = Session(
            token_hash=digest,
            user_id=found[b"user_id"].decode(),
            csrf_token=found[b"csrf_token"].decode(),
            created_at=_from_epoch(found[b"created_at"]),
            last_seen_at=_from_epoch(found[b"last_seen_at"]),
            expires_at=_from_epoch(found[b"expires_at"]),
        )
        now = self._clock()
        if self.policy.over(session, now):
            await self._client().delete(key)
            return None
        if self.policy.stale(session, now):
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.hset(key, "last_seen_at", now.timestamp())
                pipe.pexpire(key, self._ttl_ms(session, now))
                await pipe.execute()
        return session

    async def delete(self, token: str) -> None:
        if _plausible(token):
            with redis_answers():
                await self._client().delete(self._prefix + token_digest(token))


def _from_epoch(value: bytes) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)
