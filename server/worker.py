"""The background jobs of `steerway worker`, without the HTTP server: the alert evaluator, the
report scheduler, the retention job, the judges of evaluations (their calls recorded by a
recorder of this process), the resumption of comparisons whose process died and, on Postgres,
the roll-up folder. Each already runs once across processes (the evaluator's, the scheduler's
and retention's locks, the folder's advisory lock) and judges and comparisons are claimed with
a lease, so a worker can run beside gateways that run them too."""

from __future__ import annotations

import asyncio
import logging

from gateway.config.file import GatewayConfig
from gateway.jobs.alert_sources import gauge_sources
from gateway.jobs.comparisons import Comparisons
from gateway.jobs.evaluation import JudgeWorkers, prepare_evaluators
from gateway.upstream.health import create_health
from providers.upstream import UpstreamClient
from server.alerts_setup import prepare_alerts
from server.app import content_redactor, provider_adapters, report_scheduler
from telemetry.alerts import AlertEvaluator, Delivery
from telemetry.alerts.http_client import close_shared_client
from telemetry.db import create_engine, redact_url
from telemetry.recorder import Recorder
from telemetry.retention.job import retention_job
from telemetry.rollup_folding import RollupFolder

logger = logging.getLogger("steerway.worker")


async def run_worker(
    database_url: str,
    config: GatewayConfig,
    stopping: asyncio.Event,
    *,
    redis_url: str | None = None,
) -> None:
    """Run the jobs until `stopping` is set, then let each finish (or cancel it after its own
    close timeout) and let go of the database. With `redis_url`, `deployment_down` rules read
    the cooldowns the gateways share; without, this process serves nothing and sees none."""
    engine = create_engine(database_url)
    try:
        await prepare_alerts(engine, config)
        await prepare_evaluators(engine, config)
    except BaseException:
        await engine.dispose()
        raise
    health = create_health(redis_url)
    evaluator = AlertEvaluator(
        engine,
        interval=config.alerts.interval,
        delivery=Delivery(
            console_url=config.console.public_url or "",
            gauges=gauge_sources(engine, config, health),
        ),
    )
    reports = report_scheduler(engine, console_url=config.console.public_url or "")
    folder = RollupFolder(engine, interval=config.telemetry.rollup_fold_interval_ms / 1000.0)
    retention = retention_job(engine, config.telemetry.retention)
    # The judge's calls are recorded like the gateway's: through a recorder of this process.
    recorder = Recorder(engine, redact=content_redactor(config))
    upstream = UpstreamClient()
    adapters = provider_adapters(config, upstream)
    judges = JudgeWorkers(engine, config, adapters, recorder.record)
    comparisons = Comparisons(engine, config, adapters, recorder.record)
    try:
        await health.start()
        await evaluator.start()
        logger.info(
            "evaluating alert rules every %g s on %s",
            config.alerts.interval,
            redact_url(database_url),
        )
        await reports.start()
        logger.info("making scheduled reports when due")
        await folder.start()
        if engine.dialect.name == "postgresql":
            logger.info(
                "folding hour and day roll-ups every %g s",
                config.telemetry.rollup_fold_interval_ms / 1000.0,
            )
        if retention is not None:
            await retention.start()
            logger.info("applying retention every %g s", config.telemetry.retention.interval_s)
        await recorder.start()
        await upstream.start()
        await judges.start()
        logger.info("judging evaluations with %d workers", config.evaluation.concurrency)
        comparisons.start()
        logger.info("resuming comparisons whose process stopped")
        await stopping.wait()
        logger.info("stopping: waiting for a round in progress")
    finally:
        await comparisons.close()
        await judges.close()
        await recorder.stop()
        await upstream.close()
        await evaluator.close()
        await reports.close()
        await folder.close()
        if retention is not None:
            await retention.close()
        await health.close()
        await close_shared_client()
        await engine.dispose()
    logger.info("stopped")
