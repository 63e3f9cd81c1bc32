"""The console's sign-in parts of one worker: users, sessions, throttling and their settings.

Built at start by the application factory. With Redis configured, sign-in failures are counted
there (so every worker and replica counts together) and sessions are kept there unless
`console.session_store` says `database`; without Redis, sessions are kept in the database and
failures are counted in each process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.sessions import DatabaseSessions, RedisSessions, SessionPolicy, SessionStore
from admin_ui.throttle import MemoryThrottle, RedisThrottle, SigninThrottle, ThrottleLimits
from admin_ui.users import UserStore
from gateway.config.console import ConsoleConfig


@dataclass
class ConsoleAccess:
    config: ConsoleConfig
    users: UserStore
    sessions: SessionStore
    throttle: SigninThrottle
    engine: AsyncEngine

    @classmethod
    def create(
        cls, engine: AsyncEngine, config: ConsoleConfig, redis_url: str | None
    ) -> ConsoleAccess:
        policy = SessionPolicy(
            idle=timedelta(minutes=config.session_idle_minutes),
            lifetime=timedelta(hours=config.session_max_hours),
        )
        limits = ThrottleLimits(
            per_account=config.signin_attempts_per_account,
            per_address=config.signin_attempts_per_address,
            window_seconds=config.signin_window_minutes * 60,
        )
        if config.session_store == "redis" and redis_url is None:
            raise ValueError("console.session_store is redis but STEERWAY_REDIS_URL is not set")
        sessions: SessionStore = DatabaseSessions(engine, policy)
        if redis_url is not None and config.session_store != "database":
            sessions = RedisSessions(redis_url, policy)
        throttle: SigninThrottle = MemoryThrottle(limits)
        if redis_url is not None:
            throttle = RedisThrottle(redis_url, limits)
        return cls(config, UserStore(engine), sessions, throttle, engine)

    async def start(self) -> None:
        await self.sessions.start()
        await self.throttle.start()

    async def close(self) -> None:
        await self.sessions.close()
        await self.throttle.close()
