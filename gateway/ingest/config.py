"""The `otlp_ingest` section of the config: the limits of `POST /v1/traces`.

```yaml
otlp_ingest:
  max_body_bytes: 8388608       # the body as sent and after gunzip; past it: 413
  max_spans: 2000               # spans in one request; past it: 413
  max_attribute_length: 1048576 # characters of one attribute value (a prompt, say); past it the span is rejected
  max_span_age_seconds: 604800  # spans that ended longer ago are rejected
  max_future_seconds: 300       # spans that end later than now plus this are rejected
```

Every field is optional.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

SECTION_FIELDS: Final = (
    "max_body_bytes",
    "max_spans",
    "max_attribute_length",
    "max_span_age_seconds",
    "max_future_seconds",
)


class OtlpIngestConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_body_bytes: int = 8 * 1024 * 1024
    """Applies to the compressed body and again to the decompressed one, so a small gzip body
    cannot expand past it (a gzip bomb is cut when the limit is reached)."""
    max_spans: int = 2000
    """The OpenTelemetry SDK's batch processor sends at most 512 spans a request by default."""
    max_attribute_length: int = 1024 * 1024
    """Characters (and bytes of binary values) in one attribute value, summed over its items
    when it is a list or a map."""
    max_span_age_seconds: int = 7 * 24 * 3600
    max_future_seconds: int = 300


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def non_negative_integer(self, value: Any, path: str, *, default: int) -> int: ...


def parse_otlp_ingest(value: Any, path: str, reader: Reader) -> OtlpIngestConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = OtlpIngestConfig()
    return OtlpIngestConfig(
        max_body_bytes=reader.positive_integer(
            fields.get("max_body_bytes"), f"{path}.max_body_bytes", default=defaults.max_body_bytes
        ),
        max_spans=reader.positive_integer(
            fields.get("max_spans"), f"{path}.max_spans", default=defaults.max_spans
        ),
        max_attribute_length=reader.positive_integer(
            fields.get("max_attribute_length"),
            f"{path}.max_attribute_length",
            default=defaults.max_attribute_length,
        ),
        max_span_age_seconds=reader.positive_integer(
            fields.get("max_span_age_seconds"),
            f"{path}.max_span_age_seconds",
            default=defaults.max_span_age_seconds,
        ),
        max_future_seconds=reader.non_negative_integer(
            fields.get("max_future_seconds"),
            f"{path}.max_future_seconds",
            default=defaults.max_future_seconds,
        ),
    )
