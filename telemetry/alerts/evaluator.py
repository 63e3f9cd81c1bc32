"""The alert evaluator: every `interval` seconds, every rule of every workspace evaluated once
across the gateway's replicas.

A round runs under `round_lock` (a Postgres advisory lock; on SQLite a file lock the workers of
one `steerway serve` share): a process that finds it taken skips the round, and the one holding
it evaluates every rule and sends what is due. Instance states live in the database, so
whichever process evaluates next carries on from them; a notification sent in a round is
recorded before the lock is let go, and no later round sends it again.

A rule that fails (a query error, a broken channel row) is logged and skipped; the others are
evaluated all the same.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.evaluation import Delivery, Outcome, evaluate_rule
from telemetry.alerts.round_lock import round_lock
from telemetry.alerts.rule import AlertRule
from telemetry.alerts.rule_store import load_rules
from telemetry.periodic import PeriodicJob

logger = logging.getLogger("steerway.telemetry.alerts.evaluator")

DEFAULT_INTERVAL: Final = 30.0
CLOSE_TIMEOUT: Final = 5.0
"""The longest a stopping gateway waits for a round in progress before cancelling it."""
CONCURRENT_RULES: Final = 4
"""Rules evaluated at once, so that a channel slow to answer holds back few others."""


async def evaluate_all(
    engine: AsyncEngine, now: datetime | None = None, delivery: Delivery | None = None
) -> dict[str, list[Outcome]] | None:
    """One round: every rule evaluated at `now` (default: the current time); each rule's
    outcomes by rule id (a rule that failed has none). None when another replica holds the
    round's lock."""
    at = now or datetime.now(UTC)
    async with round_lock(engine) as locked:
        if not locked:
            return None
        return await _evaluate_rules(engine, at, delivery)


async def _evaluate_rules(
    engine: AsyncEngine, now: datetime, delivery: Delivery | None
) -> dict[str, list[Outcome]]:
    rules = await load_rules(engine)
    gate = asyncio.Semaphore(CONCURRENT_RULES)
    outcomes: dict[str, list[Outcome]] = {}

    async def one(rule: AlertRule) -> None:
        async with gate:
            try:
                outcomes[rule.id] = await evaluate_rule(engine, rule, now, delivery)
            except Exception as error:
                logger.warning(
                    "alert rule %r (%s) not evaluated: %s: %s",
                    rule.name,
                    rule.id,
                    type(error).__name__,
                    error,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )

    await asyncio.gather(*(one(rule) for rule in rules))
    return outcomes


class AlertEvaluator:
    """Runs `evaluate_all` every `interval` seconds while the gateway runs."""

    def __init__(
        self,
        engine: AsyncEngine,
        interval: float = DEFAULT_INTERVAL,
        delivery: Delivery | None = None,
    ) -> None:
        self._job = PeriodicJob(
            "steerway-alert-evaluator",
            interval,
            lambda: evaluate_all(engine, delivery=delivery),
            logger=logger,
            failing="alert rules not evaluated: database %s",
            close_timeout=CLOSE_TIMEOUT,
        )

    async def start(self) -> None:
        await self._job.start()

    async def close(self) -> None:
        await self._job.close()
