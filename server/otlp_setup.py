"""Builds the OTLP exporters from the config (`telemetry.otlp`), or nothing without it.

The exporter's modules (opentelemetry-proto, the `steerway_otlp_*` metrics) are imported only
when the section is there, so a gateway that does not export pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.config.file import GatewayConfig, ProviderConfig

if TYPE_CHECKING:
    from telemetry.otlp_export import OtlpExporter
    from telemetry.otlp_metric_export import MetricExporter
    from telemetry.otlp_spans import ProviderInfo


def build_exporters(config: GatewayConfig) -> tuple[OtlpExporter | None, MetricExporter | None]:
    """The span exporter and, when `metrics_interval_seconds` is set, the metric exporter."""
    otlp = config.telemetry.otlp
    if otlp is None:
        return None, None
    from telemetry.otlp_export import OtlpExporter
    from telemetry.otlp_metric_export import MetricExporter
    from telemetry.otlp_metrics import PrometheusExportObserver
    from telemetry.otlp_spans import SpanEncoder

    encoder = SpanEncoder(service_name=otlp.service_name, providers=provider_info(config.providers))
    headers = {name: value.reveal() for name, value in otlp.headers.items()}
    observer = PrometheusExportObserver()
    spans = OtlpExporter(
        encoder,
        url=otlp.traces_url,
        headers=headers,
        sampling_ratio=otlp.sampling_ratio,
        compression=otlp.compression,
        timeout=otlp.timeout_seconds,
        queue_size=otlp.queue_size,
        batch_size=otlp.batch_size,
        max_attempts=otlp.max_attempts,
        max_backoff=otlp.max_backoff_seconds,
        observer=observer,
    )
    if not otlp.metrics_interval_seconds:
        return spans, None
    metrics = MetricExporter(
        url=otlp.metrics_url,
        resource=encoder.resource,
        scope=encoder.scope,
        interval=otlp.metrics_interval_seconds,
        headers=headers,
        compression=otlp.compression,
        timeout=otlp.timeout_seconds,
        observer=observer,
    )
    return spans, metrics


def provider_info(providers: Mapping[str, ProviderConfig]) -> dict[str, ProviderInfo]:
    """Each configured provider's `gen_ai.provider.name` and the server its calls go to."""
    from telemetry.otlp_spans import GEN_AI_PROVIDER_NAMES, ProviderInfo

    found = {}
    for name, provider in providers.items():
        parts = urlsplit(provider.base_url)
        found[name] = ProviderInfo(
            gen_ai_name=GEN_AI_PROVIDER_NAMES.get(provider.type, provider.type),
            address=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
        )
    return found
