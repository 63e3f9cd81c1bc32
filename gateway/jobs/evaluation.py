"""Putting evaluations together in a process: the config file's evaluators written to the
table, the picker the recorder uses, and the judge workers with their model caller."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import ConfigError, GatewayConfig
from gateway.upstream.model_calls import ModelCaller
from providers.base import ProviderAdapter
from rules.recorded import recorded_test
from telemetry.db_outage import is_unavailable
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.evaluation.store import SyncError, sync_config_evaluators
from telemetry.evaluation.worker import EvaluationWorkers, PoolSettings
from telemetry.records import TraceBundle

logger = logging.getLogger("steerway.evaluation")


async def prepare_evaluators(engine: AsyncEngine, config: GatewayConfig) -> None:
    """Write the file's evaluators (`origin = config`); `ConfigError` naming the entry when
    they cannot be applied, a warning while the database is unreachable."""
    try:
        await sync_config_evaluators(engine, config.evaluation.evaluators)
    except SyncError as error:
        raise ConfigError([str(error)]) from None
    except Exception as error:
        if not is_unavailable(error):
            raise
        logger.warning("evaluators from the config file not applied: database unreachable")


def evaluation_picker(engine: AsyncEngine, config: GatewayConfig) -> EvaluationPicker:
    return recorded_evaluation_picker(engine, config.evaluation.refresh_interval)


def recorded_evaluation_picker(engine: AsyncEngine, refresh_interval: float) -> EvaluationPicker:
    """The picker of evaluators whose conditions read recorded traces (`rules.recorded`); the
    writer process builds its own with it."""
    return EvaluationPicker(
        engine, compile_condition=recorded_test, refresh_interval=refresh_interval
    )


def error_summary_caller(
    config: GatewayConfig,
    adapters: Mapping[str, ProviderAdapter],
    record: Callable[[TraceBundle], bool],
) -> ModelCaller:
    """The caller of `evaluation.error_summary_model`: its calls are recorded like a judge's."""
    return ModelCaller(
        config, adapters, record, store_content=config.telemetry.store_content != "none"
    )


class JudgeWorkers:
    """The pool and the caller it uses, started and closed together."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: GatewayConfig,
        adapters: Mapping[str, ProviderAdapter],
        record: Callable[[TraceBundle], bool],
    ) -> None:
        settings = config.evaluation
        self.caller = ModelCaller(
            config,
            adapters,
            record,
            store_content=config.telemetry.store_content != "none",
        )
        self.pool = EvaluationWorkers(
            engine,
            self.caller,
            PoolSettings(
                concurrency=settings.concurrency,
                poll_interval=settings.poll_interval,
                lease_s=settings.lease,
                backoff_s=settings.backoff,
            ),
        )

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()
        await self.caller.close()
