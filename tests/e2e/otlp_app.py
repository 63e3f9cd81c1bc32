"""An application that calls a provider directly with the `openai` SDK, instrumented by
`opentelemetry-instrumentation-openai-v2` and exporting with the OpenTelemetry SDK's OTLP/HTTP
(protobuf) exporter: what a user who does not route through the gateway runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class InstrumentedApp:
    def __init__(self, provider_base_url: str, tracer_provider: TracerProvider) -> None:
        self.client = openai.OpenAI(
            base_url=provider_base_url, api_key="sk-provider", max_retries=0
        )
        self._tracer_provider = tracer_provider
        self._seen = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self._seen))

    def spans(self) -> tuple[ReadableSpan, ...]:
        """The spans the application made, as its own SDK saw them."""
        return self._seen.get_finished_spans()

    def flush(self) -> bool:
        return self._tracer_provider.force_flush(timeout_millis=10_000)


@contextmanager
def instrumented_app(
    provider_base_url: str, traces_endpoint: str, api_key: str, service: str = "support-bot"
) -> Iterator[InstrumentedApp]:
    """The application, instrumented while the block runs; its spans are exported to
    `traces_endpoint` with `api_key` as a bearer token."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(
        endpoint=traces_endpoint, headers={"Authorization": f"Bearer {api_key}"}
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield InstrumentedApp(provider_base_url, tracer_provider)
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
