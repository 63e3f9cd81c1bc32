"""The `telemetry.otlp` section of the config: exporting the gateway's spans over OTLP/HTTP.

```yaml
telemetry:
  otlp:
    endpoint: http://otel-collector:4318          # /v1/traces is appended unless already there
    headers:
      authorization: "Bearer ${OTLP_TOKEN}"       # sent with every export; never shown or logged
    sampling_ratio: 0.25                           # share of traces exported, decided per trace
    service_name: steerway
    compression: gzip                              # gzip | none
    timeout_seconds: 10
    queue_size: 10000                              # traces waiting for export; more are dropped
    batch_size: 512                                # traces per export request
    max_attempts: 5                                # per request, on 429/502/503/504 or no answer
    max_backoff_seconds: 30                        # longest wait between attempts (Retry-After too)
    metrics_interval_seconds: 60                   # also send the metrics this often (0: never)
```

Without the section nothing is exported and the recorder does exactly what it did before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec

SECTION_FIELDS: Final = (
    "endpoint",
    "headers",
    "sampling_ratio",
    "service_name",
    "compression",
    "timeout_seconds",
    "queue_size",
    "batch_size",
    "max_attempts",
    "max_backoff_seconds",
    "metrics_interval_seconds",
)
COMPRESSIONS: Final = ("gzip", "none")
TRACES_PATH: Final = "/v1/traces"
METRICS_PATH: Final = "/v1/metrics"
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SET_BY_THE_EXPORTER: Final = frozenset(
    {"content-type", "content-encoding", "content-length", "host", "transfer-encoding"}
)


class HeaderValue(Protocol):
    """A header value kept as a secret: shown as `***`, read with `reveal()`."""

    def reveal(self) -> str: ...


class OtlpConfig(msgspec.Struct, frozen=True, kw_only=True):
    traces_url: str
    """Where spans are POSTed: the endpoint with `/v1/traces` appended unless it ends so."""
    headers: Mapping[str, HeaderValue] = msgspec.field(default_factory=dict)
    """Sent with every export request; values are secrets (a collector's API key)."""
    sampling_ratio: float = 1.0
    service_name: str = "steerway"
    compression: str = "gzip"
    timeout_seconds: float = 10.0
    queue_size: int = 10_000
    batch_size: int = 512
    max_attempts: int = 5
    max_backoff_seconds: float = 30.0
    metrics_url: str = ""
    """Where metrics are POSTed: the endpoint with `/v1/metrics` in place of `/v1/traces`."""
    metrics_interval_seconds: float = 0.0
    """How often this worker's metrics are sent; 0: they are not."""

    def __repr__(self) -> str:
        return (
            f"OtlpConfig(traces_url={_without_userinfo(self.traces_url)!r}, "
            f"headers={dict.fromkeys(self.headers, '***')!r}, "
            f"sampling_ratio={self.sampling_ratio!r}, service_name={self.service_name!r})"
        )


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def report(self, path: str, message: str) -> None: ...

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def entries(self, value: Any, path: str) -> list[tuple[str, Any]]: ...

    def string(self, value: Any, path: str, *, default: str = "") -> str: ...

    def secret(self, value: Any, path: str) -> Any: ...

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str) -> str: ...

    def http_url(self, value: Any, path: str) -> str: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def non_negative_number(self, value: Any, path: str, *, default: float) -> float: ...


def traces_url(endpoint: str) -> str:
    """`endpoint` as a traces URL: used as it is when its path already ends in `/v1/traces`
    (like `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), else with `/v1/traces` appended to its path
    (like `OTEL_EXPORTER_OTLP_ENDPOINT`)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith(TRACES_PATH):
        path += TRACES_PATH
    return urlunsplit(parts._replace(path=path))


def metrics_url(endpoint: str) -> str:
    """`endpoint` as a metrics URL: its `/v1/traces` replaced by `/v1/metrics`, or
    `/v1/metrics` appended to its path."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/").removesuffix(TRACES_PATH) + METRICS_PATH
    return urlunsplit(parts._replace(path=path))


def parse_otlp(value: Any, path: str, reader: Reader) -> OtlpConfig | None:
    if value is None:
        return None
    fields = reader.fields(value, path, SECTION_FIELDS, required=("endpoint",))
    defaults = OtlpConfig(traces_url="")
    endpoint = reader.http_url(fields.get("endpoint"), f"{path}.endpoint")
    ratio = reader.non_negative_number(
        fields.get("sampling_ratio"), f"{path}.sampling_ratio", default=defaults.sampling_ratio
    )
    if ratio > 1:
        reader.report(f"{path}.sampling_ratio", f"expected a number from 0 to 1, got {ratio:g}")
    return OtlpConfig(
        traces_url=traces_url(endpoint) if endpoint else "",
        metrics_url=metrics_url(endpoint) if endpoint else "",
        headers=_headers(fields.get("headers"), f"{path}.headers", reader),
        sampling_ratio=min(ratio, 1.0),
        service_name=reader.string(
            fields.get("service_name"), f"{path}.service_name", default=defaults.service_name
        ),
        compression=reader.choice(
            fields.get("compression"),
            f"{path}.compression",
            COMPRESSIONS,
            default=defaults.compression,
        ),
        timeout_seconds=reader.positive_number(
            fields.get("timeout_seconds"),
            f"{path}.timeout_seconds",
            default=defaults.timeout_seconds,
        ),
        queue_size=reader.positive_integer(
            fields.get("queue_size"), f"{path}.queue_size", default=defaults.queue_size
        ),
        batch_size=reader.positive_integer(
            fields.get("batch_size"), f"{path}.batch_size", default=defaults.batch_size
        ),
        max_attempts=reader.positive_integer(
            fields.get("max_attempts"), f"{path}.max_attempts", default=defaults.max_attempts
        ),
        max_backoff_seconds=reader.positive_number(
            fields.get("max_backoff_seconds"),
            f"{path}.max_backoff_seconds",
            default=defaults.max_backoff_seconds,
        ),
        metrics_interval_seconds=reader.non_negative_number(
            fields.get("metrics_interval_seconds"),
            f"{path}.metrics_interval_seconds",
            default=defaults.metrics_interval_seconds,
        ),
    )


def _headers(value: Any, path: str, reader: Reader) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    for name, header_value in reader.entries(value, path):
        header_path = f"{path}.{name}"
        if not _HEADER_NAME.fullmatch(name):
            reader.report(header_path, "not a valid HTTP header name")
            continue
        if name.lower() in _SET_BY_THE_EXPORTER:
            reader.report(header_path, "set by the exporter itself; it cannot be configured")
            continue
        if isinstance(header_value, int) and not isinstance(header_value, bool):
            header_value = str(header_value)
        secret = reader.secret(header_value, header_path)
        if secret is None:
            continue
        if "\r" in secret.reveal() or "\n" in secret.reveal():
            reader.report(header_path, "header values must not contain line breaks")
            continue
        headers[name.lower()] = secret
    return headers


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
