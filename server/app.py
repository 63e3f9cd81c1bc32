"""The application factory: a Litestar app with the `/v1` proxy mounted as raw ASGI.

Everything with a lifetime (database engine, recorder, upstream client, the embedded mock) is
built on startup and closed on shutdown, once per worker process.
"""

from __future__ import annotations

import gc
import importlib.metadata
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import asgi
from litestar.types import ControllerRouterHandler, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.console_access import ConsoleAccess
from admin_ui.console_auth import SignInRequired
from admin_ui.error_pages import console_error, is_console_page
from admin_ui.openapi import openapi_config
from admin_ui.signin import sign_in_redirect
from admin_ui.templating import template_config
from gateway.cache.response_cache import ResponseCache, create_cache
from gateway.config.defaults import default_config, wants_mock
from gateway.config.file import (
    DEFAULT_ANTHROPIC_VERSION,
    GatewayConfig,
    ProviderConfig,
    load_config,
)
from gateway.config.settings import Settings, serve_workers
from gateway.entry.auth import Authenticator
from gateway.entry.metrics_endpoint import MetricsEndpoint, MetricsListener
from gateway.entry.server_connections import when_shutting_down
from gateway.errors import GatewayError, database_unavailable, error_body
from gateway.guardrails.engine import Guardrails
from gateway.inbound.responses_store import ResponseStore
from gateway.ingest.otlp import PATH as OTLP_TRACES_PATH
from gateway.ingest.otlp import OtlpIngest
from gateway.jobs.alert_sources import gauge_sources
from gateway.jobs.comparisons import Comparisons
from gateway.jobs.evaluation import (
    JudgeWorkers,
    error_summary_caller,
    evaluation_picker,
    prepare_evaluators,
)
from gateway.keys.store import KeyStore
from gateway.limits.admission import Admission, budget_limits
from gateway.limits.budgets import BudgetLedger, BudgetPolicy, create_budget_ledger
from gateway.limits.ratelimit import RateLimiter, RateLimitPolicy, create_rate_limiter
from gateway.proxy import Proxy
from gateway.steering.rulebook import Rulebook
from gateway.upstream.health import create_health
from gateway.upstream.model_calls import ModelCaller
from gateway.upstream.routing import Router
from providers.anthropic import AnthropicAdapter
from providers.azure import AzureOpenAIAdapter
from providers.base import ProviderAdapter
from providers.gemini import GeminiAdapter
from providers.native import native_api
from providers.openai import OpenAIAdapter
from providers.upstream import UpstreamClient
from rules.store import RuleStore
from server.alerts_setup import prepare_alerts
from server.gc_tuning import serving_gc
from server.otlp_setup import build_exporters
from server.telemetry_writer import recorder_writer
from telemetry import metrics
from telemetry.alerts import AlertEvaluator, Delivery
from telemetry.db import create_engine, ping
from telemetry.db_outage import DatabaseOutage, is_unavailable
from telemetry.live import LiveHub
from telemetry.live_relay import LiveRelay
from telemetry.loop_lag import loop_lag_probe
from telemetry.periodic import PeriodicJob
from telemetry.recorder import Recorder
from telemetry.reports.delivery import delivery_to_recipients
from telemetry.reports.document import ReportDocument
from telemetry.reports.runner import DEFAULT_RENDERERS, Deliver, Renderers
from telemetry.reports.scheduler import ReportScheduler
from telemetry.retention.job import retention_job
from telemetry.rollup_folding import RollupFolder
from telemetry.writer_process import ProcessWriter

if TYPE_CHECKING:
    from admin_ui.state import Gateway as ConsoleView
    from telemetry.otlp_export import OtlpExporter
    from telemetry.otlp_metric_export import MetricExporter

logger = logging.getLogger("steerway")


class Gateway:
    """One worker's running parts."""

    def __init__(self, settings: Settings, config: GatewayConfig | None = None) -> None:
        self.settings = settings
        self._given_config = config
        self.config: GatewayConfig | None = None
        self.proxy: Proxy | None = None
        self.otlp_ingest: OtlpIngest | None = None
        self.recorder: Recorder | None = None
        self.telemetry_writer: ProcessWriter | None = None
        self.responses: ResponseStore | None = None
        self.otlp_exporter: OtlpExporter | None = None
        self.otlp_metrics: MetricExporter | None = None
        self.rollup_folder: RollupFolder | None = None
        self.alert_evaluator: AlertEvaluator | None = None
        self.report_scheduler: ReportScheduler | None = None
        self.judges: JudgeWorkers | None = None
        self.summary_caller: ModelCaller | None = None
        self.comparisons: Comparisons | None = None
        self.retention: PeriodicJob | None = None
        self.live: LiveHub | None = None
        self._live_relay: LiveRelay | None = None
        self.upstream = UpstreamClient()
        self.engine = create_engine(settings.database_url)
        self.database_outage = DatabaseOutage()
        self.health = create_health(settings.redis_url)
        self._mock: Any = None
        self.rulebook: Rulebook | None = None
        self.cache: ResponseCache | None = None
        self.ledger: BudgetLedger | None = None
        self.limiter: RateLimiter | None = None
        self.guardrails: Guardrails | None = None
        self.metrics: MetricsEndpoint | None = None
        """Serves `/metrics` on the serving port; None when a separate listener does."""
        self.console_access: ConsoleAccess | None = None
        self._metrics_listener: MetricsListener | None = None

    async def start(self) -> None:
        config = self._given_config or await self._load_config()
        self.config = config
        await prepare_alerts(self.engine, config)
        await prepare_evaluators(self.engine, config)
        telemetry_config = config.telemetry
        if config.guardrails.definitions:
            self.guardrails = Guardrails(config.guardrails)
        await self._start_live_feed(config)
        self.otlp_exporter, self.otlp_metrics = build_exporters(config)
        if self.otlp_exporter is not None:
            await self.otlp_exporter.start()
        if self.otlp_metrics is not None:
            await self.otlp_metrics.start()
        picker = evaluation_picker(self.engine, config)
        self.telemetry_writer = recorder_writer(self.settings.database_url, config, picker)
        if self.telemetry_writer is not None:
            await self.telemetry_writer.start()
        self.recorder = Recorder(
            self.engine,
            queue_size=telemetry_config.queue_size,
            batch_size=telemetry_config.batch_size,
            flush_interval=telemetry_config.flush_interval_ms / 1000.0,
            spill_dir=Path(telemetry_config.spill_dir),
            observer=metrics.PrometheusRecorderObserver(),
            redact=content_redactor(config),
            durability=telemetry_config.durability,
            live=self.live,
            sampling=telemetry_config.sampling.policy(),
            also_to=self.otlp_exporter,
            picker=picker,
            writer=self.telemetry_writer,
        )
        await self.recorder.start()
        self.rollup_folder = RollupFolder(
            self.engine, interval=telemetry_config.rollup_fold_interval_ms / 1000.0
        )
        await self.rollup_folder.start()
        if config.alerts.run_in_serve:
            self.alert_evaluator = AlertEvaluator(
                self.engine,
                interval=config.alerts.interval,
                delivery=Delivery(
                    console_url=config.console.public_url or "",
                    gauges=gauge_sources(self.engine, config, self.health),
                ),
            )
            await self.alert_evaluator.start()
        self.report_scheduler = report_scheduler(
            self.engine, console_url=config.console.public_url or ""
        )
        await self.report_scheduler.start()
        self.retention = retention_job(self.engine, telemetry_config.retention)
        if self.retention is not None:
            await self.retention.start()
        await self.upstream.start()
        await self.health.start()
        adapters = provider_adapters(config, self.upstream)
        router = Router.from_config(config, adapters, config.price_table())
        if config.evaluation.run_in_serve:
            self.judges = JudgeWorkers(self.engine, config, adapters, self.recorder.record)
            await self.judges.start()
        if config.evaluation.error_summary_model is not None:
            self.summary_caller = error_summary_caller(config, adapters, self.recorder.record)
        self.comparisons = Comparisons(self.engine, config, adapters, self.recorder.record)
        self.comparisons.start()
        if self.guardrails is not None:
            self.guardrails.connect_moderation(
                providers=config.providers, router=router, upstream=self.upstream
            )
        self.rulebook = Rulebook(
            config_rules=config.rules,
            store=RuleStore(self.engine),
            models=list(router.model_names),
            providers=list(config.providers),
            buckets=list(config.budgets.buckets),
            guardrails=config.guardrails.names,
            redis_url=self.settings.redis_url,
        )
        await self.rulebook.start()
        redis_timeout = config.redis.timeout_ms / 1000.0
        self.cache = create_cache(
            self.settings.redis_url,
            config.cache.max_bytes,
            timeout=redis_timeout,
            on_error="closed" if config.cache.on_redis_error == "closed" else "open",
        )
        await self.cache.start()
        self.ledger = create_budget_ledger(
            self.settings.redis_url,
            self.engine,
            BudgetPolicy(
                on_redis_error=_policy(config.budgets.on_redis_error),
                redis_timeout=redis_timeout,
            ),
            spill_dir=Path(telemetry_config.spill_dir),
        )
        await self.ledger.start()
        self.limiter = create_rate_limiter(
            self.settings.redis_url,
            RateLimitPolicy(
                on_redis_error=_policy(config.rate_limits.on_redis_error),
                timeout=redis_timeout,
            ),
        )
        await self.limiter.start()
        admission = Admission(
            limiter=self.limiter,
            ledger=self.ledger,
            router=router,
            timezone=config.budgets.timezone,
            end_user_budgets=budget_limits(config.budgets.end_user),
            buckets={name: budget_limits(specs) for name, specs in config.budgets.buckets.items()},
        )
        self.responses = ResponseStore(
            self.engine,
            retention_days=config.responses.retention_days,
            queue_size=config.responses.write_queue,
        )
        await self.responses.start()
        self.proxy = Proxy(
            router=router,
            authenticator=Authenticator(
                KeyStore(self.engine),
                master_key=self.settings.master_key,
                ttl=config.auth.key_cache_ttl_seconds,
                stale_ttl=config.auth.stale_key_ttl_seconds,
                outage=self.database_outage,
            ),
            record=self.recorder.record,
            store_content=telemetry_config.store_content != "none",
            max_body_bytes=config.limits.max_body_bytes,
            health=self.health,
            backpressure=self.recorder,
            rules=self.rulebook,
            cache=self.cache,
            cache_enabled=config.cache.enabled,
            cache_ttl=config.cache.ttl_seconds,
            admission=admission,
            guardrails=self.guardrails,
            unauthenticated_traces_per_minute=telemetry_config.unauthenticated_traces_per_minute,
            durable=self.recorder.durable if telemetry_config.durability == "spill-first" else None,
            responses=self.responses,
        )
        self.otlp_ingest = OtlpIngest(
            authenticator=self.proxy.authenticator,
            record=self.recorder.record,
            prices=config.price_table(),
            store_content=telemetry_config.store_content != "none",
            config=config.otlp_ingest,
            congestion=self.recorder,
        )
        access = ConsoleAccess.create(self.engine, config.console, self.settings.redis_url)
        await access.start()
        self.console_access = access
        await self._serve_metrics(config)
        # Everything built so far lives as long as the process: keep it out of the collector's
        # way so full collections stay short while serving.
        gc.collect()
        gc.freeze()

    async def _start_live_feed(self, config: GatewayConfig) -> None:
        """The live feed's hub; with Redis, shared with the other workers through pub/sub."""
        self.live = LiveHub(
            workers=serve_workers(),
            viewer_queue=config.live.viewer_queue,
            max_viewers=config.live.max_viewers,
            rows_per_second=config.live.rows_per_second,
        )
        self.live.start()
        when_shutting_down(self.live.close)
        if self.settings.redis_url:
            self._live_relay = LiveRelay(
                self.live, self.settings.redis_url, channel_prefix=config.live.channel_prefix
            )
            await self._live_relay.start()

    async def _serve_metrics(self, config: GatewayConfig) -> None:
        token = config.metrics.bearer_token
        endpoint = MetricsEndpoint(
            token.reveal() if token is not None else None, self._refresh_deployment_gauges
        )
        if config.metrics.listen is None:
            self.metrics = endpoint
            return
        host, port = config.metrics.listen
        # Workers share metrics through PROMETHEUS_MULTIPROC_DIR; each binds the port too.
        shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._metrics_listener = MetricsListener(endpoint, host, port, reuse_port=shared)
        await self._metrics_listener.start()
        logger.info("metrics listening on http://%s:%d/metrics", host, port)

    def _refresh_deployment_gauges(self) -> None:
        if self.proxy is None:
            return
        cooling = self.health.cooling_down()
        for deployment in self.proxy.router.deployments():
            metrics.deployment_up.labels(deployment).set(0 if deployment in cooling else 1)

    async def _load_config(self) -> GatewayConfig:
        if self.settings.config_path:
            return load_config(self.settings.config_path)
        if wants_mock(os.environ):
            from providers.mock_server import start_mock_server

            self._mock = await start_mock_server()
            logger.info("no provider configured: serving the built-in mock provider")
            return default_config(os.environ, mock_base_url=self._mock.base_url)
        return default_config(os.environ)

    async def stop(self) -> None:
        if self.live is not None:
            self.live.close()
        if self._live_relay is not None:
            await self._live_relay.close()
        if self._metrics_listener is not None:
            await self._metrics_listener.close()
        if self.guardrails is not None:
            self.guardrails.close()
        if self.console_access is not None:
            await self.console_access.close()
        if self.rulebook is not None:
            await self.rulebook.close()
        if self.cache is not None:
            await self.cache.close()
        if self.limiter is not None:
            await self.limiter.close()
        if self.ledger is not None:
            await self.ledger.close()
        if self.judges is not None:
            await self.judges.close()
        if self.summary_caller is not None:
            await self.summary_caller.close()
        if self.comparisons is not None:
            await self.comparisons.close()
        if self.recorder is not None:
            await self.recorder.stop()
        if self.telemetry_writer is not None:
            await self.telemetry_writer.close()
        if self.responses is not None:
            await self.responses.close()
        if self.otlp_exporter is not None:
            await self.otlp_exporter.stop()
        if self.otlp_metrics is not None:
            await self.otlp_metrics.stop()
        if self.rollup_folder is not None:
            await self.rollup_folder.close()
        if self.alert_evaluator is not None:
            await self.alert_evaluator.close()
        if self.report_scheduler is not None:
            await self.report_scheduler.close()
        if self.retention is not None:
            await self.retention.close()
        await self.upstream.close()
        await self.health.close()
        if self._mock is not None:
            await self._mock.close()
        await self.engine.dispose()

    async def ready(self) -> bool:
        try:
            await ping(self.engine)
        except Exception as error:
            if is_unavailable(error):
                self.database_outage.failed(error, "the readiness check")
            else:
                logger.warning("readiness check failed: %s", type(error).__name__)
            return False
        self.database_outage.answered()
        return self.proxy is not None


if TYPE_CHECKING:
    _console_reads: type[ConsoleView] = Gateway


def report_renderers() -> Renderers:
    """The formats this process writes reports in: CSV and JSON, and the PDF drawn with the
    console's charts."""
    return {**DEFAULT_RENDERERS, "pdf": _render_pdf}


def _render_pdf(document: ReportDocument) -> bytes:
    """The PDF library takes seconds to import: only a process that makes a PDF pays for it
    (in the runner's worker thread, off the event loop)."""
    from admin_ui.report_pdf import render_pdf

    return render_pdf(document)


def report_delivery(engine: AsyncEngine, console_url: str) -> Deliver:
    """How a made report reaches its recipients: its definition's channels."""
    return delivery_to_recipients(engine, console_url=console_url)


def report_scheduler(engine: AsyncEngine, console_url: str = "") -> ReportScheduler:
    """The scheduled reports' job, as `steerway serve` and `steerway worker` run it;
    `console_url` is the base of the links its messages carry (`console.public_url`)."""
    return ReportScheduler(
        engine, renderers=report_renderers(), deliver=report_delivery(engine, console_url)
    )


def _policy(value: str) -> Literal["open", "closed"]:
    return "closed" if value == "closed" else "open"


def content_redactor(config: GatewayConfig) -> Callable[[str], str] | None:
    """What the recorder rewrites stored text with, as `telemetry.store_content` asks."""
    return _pii_redactor() if config.telemetry.store_content == "redacted" else None


def _pii_redactor() -> Callable[[str], str]:
    """`telemetry.store_content: redacted`: the default PII entities masked by type before a
    prompt or answer is written (in the recorder, off the request path)."""
    from gateway.guardrails.masking import redact
    from gateway.guardrails.pii import PiiScanner

    scanner = PiiScanner()
    return lambda text: redact(text, scanner)


def provider_adapters(
    config: GatewayConfig, upstream: UpstreamClient
) -> dict[str, ProviderAdapter]:
    """One adapter per configured provider, sharing the upstream client."""
    return {name: _adapter(name, provider, upstream) for name, provider in config.providers.items()}


def _adapter(name: str, provider: ProviderConfig, upstream: UpstreamClient) -> ProviderAdapter:
    adapter = _typed_adapter(name, provider, upstream)
    adapter.native_api = native_api(provider.type, provider.base_url, provider.passthrough)
    return adapter


def _typed_adapter(
    name: str, provider: ProviderConfig, upstream: UpstreamClient
) -> ProviderAdapter:
    common: dict[str, Any] = {
        "base_url": provider.base_url,
        "api_key": provider.api_key.reveal() if provider.api_key is not None else None,
        "client": upstream,
        "headers": dict(provider.headers),
        "connect_timeout": provider.timeouts.connect,
        "first_byte_timeout": provider.timeouts.first_byte,
        "total_timeout": provider.timeouts.total,
    }
    if provider.type == "anthropic":
        return AnthropicAdapter(
            name,
            anthropic_version=provider.api_version or DEFAULT_ANTHROPIC_VERSION,
            forward_fields=provider.forward_fields,
            **common,
        )
    if provider.type == "gemini":
        return GeminiAdapter(name, **common)
    if provider.type == "azure":
        return AzureOpenAIAdapter(name, api_version=provider.api_version or "", **common)
    return OpenAIAdapter(name, **common)


def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Console pages answer errors as pages; everything else in OpenAI's JSON shape."""
    if is_console_page(request.url.path):
        return console_error(request, exc)
    return _openai_error(request, exc)


def _openai_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, GatewayError):
        return Response(
            exc.body(), status_code=exc.status, media_type=MediaType.JSON, headers=exc.headers
        )
    if is_unavailable(exc):
        outage: DatabaseOutage = request.app.state.gateway.database_outage
        outage.refused(exc, f"{request.method} {request.url.path}")
        error = database_unavailable(outage.retry_after)
        return Response(
            error.body(), status_code=error.status, media_type=MediaType.JSON, headers=error.headers
        )
    if isinstance(exc, HTTPException):
        status = exc.status_code
        kind = "invalid_request_error" if status < 500 else "server_error"
        return Response(
            error_body(str(exc.detail), kind, code=f"http_{status}"),
            status_code=status,
            media_type=MediaType.JSON,
        )
    logger.exception("unhandled error", exc_info=exc)
    return Response(
        error_body("The gateway failed to handle this request.", "server_error", "internal_error"),
        status_code=500,
        media_type=MediaType.JSON,
    )


def _version() -> str:
    try:
        return importlib.metadata.version("steerway")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def create_app(settings: Settings | None = None, config: GatewayConfig | None = None) -> Litestar:
    """The whole app in one: the gateway's own routes, the admin API and the console."""
    gateway = Gateway(settings or Settings.from_env(), config)
    return _litestar(gateway, [*_gateway_routes(gateway), *_console_routes()], lifespan=True)


def _gateway_routes(gateway: Gateway) -> list[ControllerRouterHandler]:
    """The proxy, OTLP ingest, health, readiness and metrics: what a gateway serves from start."""

    @asgi("/v1", is_mount=True, copy_scope=False, include_in_schema=False)
    async def v1(scope: Scope, receive: Receive, send: Send) -> None:
        proxy = gateway.proxy
        if proxy is None:
            raise GatewayError(503, "The gateway is starting.", type="server_error")
        await proxy(scope, receive, send)  # type: ignore[arg-type]

    @asgi(OTLP_TRACES_PATH, copy_scope=False, include_in_schema=False)
    async def otlp_traces(scope: Scope, receive: Receive, send: Send) -> None:
        ingest = gateway.otlp_ingest
        if ingest is None:
            raise GatewayError(503, "The gateway is starting.", type="server_error")
        await ingest(scope, receive, send)  # type: ignore[arg-type]

    @get("/healthz", media_type=MediaType.JSON, sync_to_thread=False, include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", media_type=MediaType.JSON, include_in_schema=False)
    async def readyz() -> Response[dict[str, str]]:
        if await gateway.ready():
            return Response({"status": "ready"})
        return Response(
            {"status": "unavailable", "reason": "database unreachable"}, status_code=503
        )

    @get("/metrics", sync_to_thread=False, include_in_schema=False)
    def prometheus(request: Request[Any, Any, Any]) -> Response[bytes]:
        endpoint = gateway.metrics
        if endpoint is None:
            raise NotFoundException()
        answer = endpoint.answer(request.headers.get("authorization"))
        return Response(
            answer.body,
            status_code=answer.status,
            media_type=answer.content_type,
            headers=answer.headers,
        )

    return [v1, otlp_traces, healthz, readyz, prometheus]


GATEWAY_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Served by `_gateway_routes`, with `/v1` and everything under it."""


def _is_gateway_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/") or path.rstrip("/") in GATEWAY_PATHS


def _console_routes() -> list[ControllerRouterHandler]:
    """The admin API, sign-in and the console's pages. Their modules are imported here: a third
    of a gateway's start, which a process that never serves the console need not pay."""
    from admin_ui.api import admin_router
    from admin_ui.console import console_router
    from admin_ui.signin import signin_router

    return [admin_router(), signin_router(), console_router()]


def _litestar(
    gateway: Gateway,
    route_handlers: list[ControllerRouterHandler],
    *,
    lifespan: bool = False,
    console: bool = True,
    serving: bool = False,
) -> Litestar:
    """A Litestar app on `gateway`; with `lifespan`, the one that starts and stops it. With
    `console`, it renders pages and serves the admin API's OpenAPI document. `serving`: the
    app is the process's only one (a server's worker), so it may tune the process's garbage
    collector (`server.gc_tuning`)."""

    @asynccontextmanager
    async def run_gateway(_: Litestar) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Litestar(
        route_handlers=route_handlers,
        lifespan=(
            [run_gateway, loop_lag_probe, *([serving_gc] if serving else [])] if lifespan else []
        ),
        exception_handlers={Exception: _error, SignInRequired: sign_in_redirect},
        template_config=template_config() if console else None,
        openapi_config=openapi_config(_version()) if console else None,
        logging_config=None,
    )
    app.state.gateway = gateway
    return app


class SteerwayASGI:
    """The served ASGI app: `/v1/*` goes straight to the proxy, the gateway's other routes (and
    lifespan) to a Litestar app of their own, everything else to the console's.

    The proxy routes are the hot path; skipping the framework's router and middleware for them
    saves a measurable share of each request. The console's app is built on the first request it
    gets, so a gateway is ready as soon as the proxy is.
    """

    def __init__(self, app: Litestar, console: Callable[[], Litestar]) -> None:
        self.app = app
        self.gateway: Gateway = app.state.gateway
        self._build_console = console
        self._console: Litestar | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            proxy = self.gateway.proxy
            if proxy is not None and path.startswith("/v1/"):
                if path == OTLP_TRACES_PATH and self.gateway.otlp_ingest is not None:
                    await self.gateway.otlp_ingest(scope, receive, send)  # type: ignore[arg-type]
                    return
                scope["path"] = path[3:]
                await proxy(scope, receive, send)  # type: ignore[arg-type]
                return
            if not _is_gateway_path(path):
                await self._console_app()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _console_app(self) -> Litestar:
        if self._console is None:
            self._console = self._build_console()
        return self._console


def create_app_from_env() -> SteerwayASGI:
    """The uvicorn factory entry point (`steerway serve`)."""
    gateway = Gateway(Settings.from_env())
    return SteerwayASGI(
        _litestar(gateway, _gateway_routes(gateway), lifespan=True, console=False, serving=True),
        console=lambda: _litestar(gateway, _console_routes()),
    )
