"""Process settings from the environment: where the config, database, Redis and master key are."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_DATABASE_URL = "sqlite:///./var/steerway.db"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    config_path: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    master_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            config_path=env.get("STEERWAY_CONFIG") or None,
            database_url=env.get("STEERWAY_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("STEERWAY_REDIS_URL") or None,
            master_key=env.get("STEERWAY_MASTER_KEY") or None,
        )


SERVE_WORKERS_VARIABLE = "STEERWAY_SERVE_WORKERS"
"""Set by `steerway serve` for its workers: how many it started."""


def serve_workers(environ: Mapping[str, str] | None = None) -> int:
    """The worker count `steerway serve` was started with; 1 when run some other way."""
    value = (os.environ if environ is None else environ).get(SERVE_WORKERS_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else 1
