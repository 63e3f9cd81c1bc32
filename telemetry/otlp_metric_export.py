"""The gateway's Prometheus series as OTLP metrics, sent on an interval (`telemetry.otlp.
metrics_interval_seconds`).

Each export reads this process's `gen_ai_*` and `steerway_*` series from the Prometheus registry
(what `/metrics` shows, for this worker) and sends them as cumulative metrics: counters as
monotonic sums, gauges as gauges, histograms with their bucket bounds. Names, labels and units
stay those of `/metrics`, so a dashboard reads the same series from either path. Values are
cumulative, so an export that fails is not retried: the next one carries everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Final

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric as Family

from telemetry.otlp_export import ExportObserver
from telemetry.otlp_http import ExportFailure, describe, host_of, new_client, post, request_headers
from telemetry.otlp_values import put_attributes

logger = logging.getLogger("steerway.telemetry.otlp")

EXPORTED_PREFIXES: Final = ("gen_ai_", "steerway_")


def metrics_request(
    families: Iterable[Family],
    *,
    resource: Resource,
    scope: InstrumentationScope,
    started_ns: int,
    now_ns: int,
) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.CopyFrom(resource)
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.CopyFrom(scope)
    for family in families:
        if family.type in ("counter", "gauge", "histogram") and family.samples:
            metric = scope_metrics.metrics.add(name=family.name, description=family.documentation)
            if family.unit:
                metric.unit = family.unit
            _fill(metric, family, started_ns, now_ns)
    return request


def _fill(metric: Metric, family: Family, started_ns: int, now_ns: int) -> None:
    if family.type == "counter":
        metric.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
        metric.sum.is_monotonic = True
        for sample in family.samples:
            if sample.name.endswith("_total"):
                point = metric.sum.data_points.add(
                    start_time_unix_nano=started_ns, time_unix_nano=now_ns, as_double=sample.value
                )
                put_attributes(point.attributes, sample.labels)
    elif family.type == "gauge":
        for sample in family.samples:
            point = metric.gauge.data_points.add(time_unix_nano=now_ns, as_double=sample.value)
            put_attributes(point.attributes, sample.labels)
    else:
        metric.histogram.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
        for labels, (bounds, cumulative, total, count) in _histograms(family).items():
            point = metric.histogram.data_points.add(
                start_time_unix_nano=started_ns,
                time_unix_nano=now_ns,
                count=int(count),
                sum=total,
                explicit_bounds=bounds,
                bucket_counts=[
                    int(n - previous)
                    for previous, n in zip([0.0, *cumulative[:-1]], cumulative, strict=True)
                ],
            )
            put_attributes(point.attributes, dict(labels))


def _histograms(
    family: Family,
) -> dict[tuple[tuple[str, str], ...], tuple[list[float], list[float], float, float]]:
    """Per label set: the finite bucket bounds, the cumulative counts (the last for +Inf), the
    sum and the count."""
    found: dict[tuple[tuple[str, str], ...], tuple[list[float], list[float], float, float]] = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        bounds, cumulative, total, count = found.get(key, ([], [], 0.0, 0.0))
        if sample.name.endswith("_bucket"):
            if sample.labels["le"] != "+Inf":
                bounds.append(float(sample.labels["le"]))
            cumulative.append(sample.value)
        elif sample.name.endswith("_sum"):
            total = sample.value
        elif sample.name.endswith("_count"):
            count = sample.value
        found[key] = (bounds, cumulative, total, count)
    return found


class MetricExporter:
    """Sends this process's series every `interval` seconds, and once more when it stops."""

    def __init__(
        self,
        *,
        url: str,
        resource: Resource,
        scope: InstrumentationScope,
        interval: float,
        headers: Mapping[str, str] | None = None,
        compression: str = "gzip",
        timeout: float = 10.0,
        registry: CollectorRegistry = REGISTRY,
        observer: ExportObserver | None = None,
    ) -> None:
        self._url = url
        self._resource = resource
        self._scope = scope
        self._interval = interval
        self._gzip = compression == "gzip"
        self._headers = request_headers(headers or {}, gzip=self._gzip)
        self._timeout = timeout
        self._registry = registry
        self._observer = observer
        self._started_ns = time.time_ns()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.exports = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="steerway-otlp-metrics"
            )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self.export()

    async def export(self) -> bool:
        """Send the series once; False when the collector did not take them."""
        body = await asyncio.to_thread(self._encode)
        async with new_client(self._timeout) as client:
            try:
                await post(client, self._url, body, self._headers)
            except ExportFailure as failure:
                if not self._failing:
                    shown = describe(failure)
                    logger.warning("OTLP metrics to %s failed (%s)", host_of(self._url), shown)
                    self._failing = True
                if self._observer is not None:
                    with contextlib.suppress(Exception):
                        self._observer.failed(failure.reason)
                return False
        if self._failing:
            logger.warning("OTLP metrics to %s work again", host_of(self._url))
            self._failing = False
        self.exports += 1
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.export()
            except Exception as error:  # never let one bad export end the task
                logger.error("OTLP metrics export failed: %s", type(error).__name__)

    def _encode(self) -> bytes:
        families = [
            family
            for family in self._registry.collect()
            if family.name.startswith(EXPORTED_PREFIXES)
        ]
        body = metrics_request(
            families,
            resource=self._resource,
            scope=self._scope,
            started_ns=self._started_ns,
            now_ns=time.time_ns(),
        ).SerializeToString()
        return gzip.compress(body, compresslevel=5) if self._gzip else body
