"""The steering rules in force in this worker, and how edits reach every worker.

Rules come from the config file (read-only) and from the database (edited through the admin
API, versioned). The compiled set is swapped as a whole, so a request sees either the old rules
or the new ones, never a mix. An edit made in one worker reaches the others through Redis
pub/sub when Redis is configured; every worker also polls the database's change marker (each
second without Redis, less often with it) so a missed message or a worker without Redis still
catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from typing import Any, Final

import redis.asyncio as redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from rules.compiler import RuleError, check_rules, compile_rules
from rules.engine import RuleSet
from rules.store import RuleStore
from telemetry import metrics
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable

logger = logging.getLogger("steerway.rules")

CHANNEL: Final = "steerway:rules:changed"
POLL_SECONDS: Final = 1.0
RESERVED_IDS: Final = frozenset({"simulate", "replay"})
"""Paths of the admin API under /admin/api/rules/ that a rule id would shadow."""
POLL_SECONDS_WITH_REDIS: Final = 10.0


class Rulebook:
    def __init__(
        self,
        *,
        config_rules: Sequence[dict[str, Any]],
        store: RuleStore | None,
        models: Collection[str],
        providers: Collection[str],
        buckets: Collection[str] = (),
        guardrails: Collection[str] = (),
        redis_url: str | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self.config_rules = list(config_rules)
        self.store = store
        self.models = list(models)
        self.providers = list(providers)
        self.buckets = list(buckets)
        self.guardrails = list(guardrails)
        self.current: RuleSet = compile_rules(
            self.config_rules,
            models=self.models,
            providers=self.providers,
            buckets=self.buckets,
            guardrails=self.guardrails,
            source="config",
        )
        self.invalid: dict[str, list[str]] = {}
        """Database rules left out of the running set, with why (the config changed under them)."""
        self._redis_url = redis_url
        self._redis: redis.Redis | None = None
        self._poll_seconds = poll_seconds or POLL_SECONDS
        self._listening = False
        """True while subscribed to change notifications: polling can then be rarer."""
        self._revision: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        metrics.rules_loaded.set(self.current.active)

    async def start(self) -> None:
        await self._load()
        if self.store is not None:
            self._tasks.append(
                asyncio.create_task(self._poll_forever(), name="steerway-rules-poll")
            )
        if self._redis_url and self.store is not None:
            self._redis = redis.Redis.from_url(
                self._redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
            )
            self._tasks.append(asyncio.create_task(self._listen_forever(), name="steerway-rules"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def validate(self, documents: Sequence[Any]) -> list[str]:
        """Problems with rule documents meant for the database; empty when they may be stored.

        Text the database cannot store as it is (NUL, lone surrogates) comes first: escaped, a
        condition would match something else (a regex matches a NUL as `\\x00`)."""
        unstorable = [
            f"{found}: {UNSTORABLE_PROBLEM}"
            for index, document in enumerate(documents)
            if (found := find_unstorable(document, f"rules[{index}]")) is not None
        ]
        problems = unstorable + check_rules(
            documents,
            models=self.models,
            providers=self.providers,
            buckets=self.buckets,
            guardrails=self.guardrails,
        )
        config_ids = {rule.get("id") for rule in self.config_rules}
        for index, document in enumerate(documents):
            if not isinstance(document, dict):
                continue
            rule_id = document.get("id")
            if not isinstance(rule_id, str):
                continue  # check_rules has said what is wrong with it
            if rule_id in config_ids:
                problems.append(
                    f"rules[{index}].id: '{rule_id}' is already defined in the config file"
                )
            elif rule_id in RESERVED_IDS:
                problems.append(
                    f"rules[{index}].id: '{rule_id}' is reserved (/admin/api/rules/{rule_id})"
                )
        return problems

    def is_config_rule(self, rule_id: str) -> bool:
        return any(rule.get("id") == rule_id for rule in self.config_rules)

    async def reload(self) -> None:
        """Re-read the database rules now and tell the other workers to do the same."""
        await self._load()
        if self._redis is not None:
            try:
                await self._redis.publish(CHANNEL, self._revision or "")
            except (RedisError, OSError) as error:
                logger.warning(
                    "could not announce a rule change over Redis (%s); other workers pick it "
                    "up by polling within %g s",
                    type(error).__name__,
                    self._poll_seconds,
                )

    async def _load(self) -> None:
        if self.store is None:
            return
        async with self._lock:
            revision = await self.store.revision()
            stored = await self.store.list(include_disabled=True)
            documents: list[dict[str, Any]] = list(self.config_rules)
            sources = ["config"] * len(documents)
            invalid: dict[str, list[str]] = {}
            for rule in stored:
                document = {**rule.document, "id": rule.rule_id, "enabled": rule.enabled}
                problems = check_rules(
                    [document],
                    models=self.models,
                    providers=self.providers,
                    buckets=self.buckets,
                    guardrails=self.guardrails,
                    source="database",
                )
                if problems or self.is_config_rule(rule.rule_id):
                    invalid[rule.rule_id] = problems or ["id clashes with a config file rule"]
                    continue
                documents.append(document)
                sources.append("database")
            try:
                ruleset = compile_rules(
                    documents,
                    models=self.models,
                    providers=self.providers,
                    buckets=self.buckets,
                    guardrails=self.guardrails,
                    sources=sources,
                )
            except RuleError as error:  # each rule passed alone; only a clash is left
                logger.error("database rules were not applied: %s", error)
                return
            for rule_id, problems in invalid.items():
                if rule_id not in self.invalid:
                    logger.warning("rule %r left out: %s", rule_id, "; ".join(problems))
            self.current = ruleset
            self.invalid = invalid
            self._revision = revision
            metrics.rules_loaded.set(ruleset.active)

    async def _poll_forever(self) -> None:
        assert self.store is not None
        failing = False
        while True:
            await asyncio.sleep(POLL_SECONDS_WITH_REDIS if self._listening else self._poll_seconds)
            try:
                if await self.store.revision() != self._revision:
                    await self._load()
            except (SQLAlchemyError, OSError) as error:
                if not failing:
                    logger.warning(
                        "could not check for rule changes (%s); the rules in force stay until "
                        "the database answers",
                        type(error).__name__,
                    )
                    failing = True
            else:
                if failing:
                    logger.warning("rule changes are checked again")
                    failing = False

    async def _listen_forever(self) -> None:
        assert self._redis is not None
        paused = False
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._listening = True
                    await self._load()  # anything announced while we were not listening
                    if paused:
                        logger.info("rule change notifications over Redis resumed")
                        paused = False
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            await self._load()
            except (RedisError, OSError, SQLAlchemyError) as error:
                self._listening = False
                if not paused:
                    logger.warning(
                        "rule change notifications paused (%s); polling every %g s meanwhile",
                        type(error).__name__,
                        self._poll_seconds,
                    )
                    paused = True
                await asyncio.sleep(5.0)
