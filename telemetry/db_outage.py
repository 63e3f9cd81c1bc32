"""Telling a database outage from other errors, and living through one.

When the database cannot answer, whatever needs it (a key lookup, an admin route, the readiness
probe) answers 503 with `retry-after` instead of failing with a traceback. `DatabaseOutage`
keeps that to one warning when an outage starts and one when it ends, however many requests
meet it, and lets one key lookup at a time find out whether the database is back (at most one
every `probe_interval` seconds), so requests do not queue for connections that time out.

Only reads start and end an outage (key lookups, the readiness probe): a failed write may leave
reads working, and key lookups must not be refused for it.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable

import asyncpg
from sqlalchemy import exc as sa_exc

from telemetry.writers import is_row_problem, root_cause

logger = logging.getLogger("steerway.database")

DEFAULT_PROBE_INTERVAL = 1.0
DEFAULT_QUIET_INTERVAL = 60.0

_UNAVAILABLE_CAUSES = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,  # the connection failed or was closed under the call
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.InvalidCatalogNameError,  # the database was renamed or dropped
    asyncpg.InvalidAuthorizationSpecificationError,  # the role is gone or may not log in
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.OperatorInterventionError,  # starting up, shutting down, statement cancelled
    asyncpg.ReadOnlySQLTransactionError,  # a standby after a failover
    sqlite3.OperationalError,  # locked, cannot open the file, read-only, disk I/O error
)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot answer right now (as opposed to a problem
    with what was asked of it, which would fail the same way when asked again)."""
    if is_row_problem(error):
        return False
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # no pooled connection became free, or the pool gave up reconnecting
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(root_cause(error), _UNAVAILABLE_CAUSES)


class DatabaseOutage:
    """Whether the database is away, as the calls that need it found out."""

    def __init__(
        self,
        *,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        quiet_interval: float = DEFAULT_QUIET_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe_interval = probe_interval
        self.quiet_interval = quiet_interval
        self._clock = clock
        self._quiet_until = float("-inf")
        self._since: float | None = None
        self._next_probe = 0.0
        self._probing = False
        self.refusals = 0
        """Requests answered 503 during the current (or last) outage."""
        self.served_stale = 0
        """Requests served from the stale key cache during the current (or last) outage."""

    @property
    def down(self) -> bool:
        return self._since is not None

    @property
    def retry_after(self) -> str:
        """The `retry-after` header value: when the next probe may have found it back."""
        return str(max(1, math.ceil(self.probe_interval)))

    def may_try(self) -> bool:
        """Whether a call should go to the database now: always while it is up; during an
        outage, one call at a time, at most once every `probe_interval` seconds. A True answer
        during an outage makes the caller the probe: it must call `failed` or `answered`."""
        if self._since is None:
            return True
        now = self._clock()
        if self._probing or now < self._next_probe:
            return False
        self._probing = True
        self._next_probe = now + self.probe_interval
        return True

    def failed(self, error: BaseException, during: str) -> None:
        """A call found the database away (`is_unavailable(error)` holds)."""
        self._probing = False
        if self._since is not None:
            return
        self._since = self._clock()
        self._next_probe = self._since + self.probe_interval
        self.refusals = 0
        self.served_stale = 0
        logger.warning(
            "database unavailable (%s during %s): virtual keys are answered 503 with "
            "retry-after (or from the stale key cache when configured) and records are "
            "spilled to disk until it is back",
            type(root_cause(error)).__name__,
            during,
        )

    def answered(self) -> None:
        """A call reached the database."""
        self._probing = False
        if self._since is None:
            return
        lasted = self._clock() - self._since
        self._since = None
        logger.warning(
            "database available again after %.1f s (requests answered 503 meanwhile: %d; "
            "served from the stale key cache: %d)",
            lasted,
            self.refusals,
            self.served_stale,
        )

    def refused(self, error: BaseException, during: str) -> None:
        """A request other than a key lookup (an admin route) failed for want of the database
        and was answered 503. It does not start an outage of its own: a write may fail while
        reads, and so key lookups, go on (SQLite locked by another writer). It is logged unless
        an outage is already known, at most once every `quiet_interval` seconds."""
        self.refusals += 1
        now = self._clock()
        if self._since is not None or now < self._quiet_until:
            return
        self._quiet_until = now + self.quiet_interval
        logger.warning(
            "database unavailable (%s during %s): answered 503 with retry-after",
            type(root_cause(error)).__name__,
            during,
        )

    def abandoned(self) -> None:
        """A probe ended without finding out (cancelled, or failed for another reason)."""
        self._probing = False
