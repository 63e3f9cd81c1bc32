"""The comparison runner of a process (`steerway serve` or `steerway worker`): replays through
`ReplayCalls`, judged through a `ModelCaller` of its own, at most `evaluation.concurrency`
requests at once. Running comparisons are leased for `evaluation.lease` seconds, and every
quarter of that the runner looks for comparisons whose process died to resume them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import GatewayConfig
from gateway.upstream.model_calls import ModelCaller
from gateway.upstream.replay_calls import ReplayCalls
from providers.base import ProviderAdapter
from telemetry.comparison.runner import ComparisonRunner, RunnerSettings
from telemetry.records import TraceBundle


class Comparisons:
    def __init__(
        self,
        engine: AsyncEngine,
        config: GatewayConfig,
        adapters: Mapping[str, ProviderAdapter],
        record: Callable[[TraceBundle], bool],
    ) -> None:
        store_content = config.telemetry.store_content != "none"
        self.judge = ModelCaller(config, adapters, record, store_content=store_content)
        self.runner = ComparisonRunner(
            engine,
            ReplayCalls(config, adapters, record, store_content=store_content),
            self.judge,
            RunnerSettings(
                concurrency=config.evaluation.concurrency,
                lease_s=config.evaluation.lease,
                resume_interval_s=config.evaluation.lease / 4,
            ),
        )

    def start(self) -> None:
        self.runner.start_resuming()

    async def close(self) -> None:
        await self.runner.close()
        await self.judge.close()
