"""The `metrics` section of the config: where `/metrics` is served and who may read it.

```yaml
metrics:
  listen: 127.0.0.1:9464                  # a listener of its own; the serving port's /metrics is 404
  bearer_token: ${STEERWAY_METRICS_TOKEN}  # scrapes must send Authorization: Bearer <token>
```

Without the section `/metrics` stays on the serving port, open to anyone who can reach it.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from gateway.config.file import Secret
    from gateway.guardrails.config import Reader

SECTION_FIELDS: Final = ("listen", "bearer_token")


class MetricsConfig(msgspec.Struct, frozen=True, kw_only=True):
    listen: tuple[str, int] | None = None
    """(host, port) of a separate listener that serves only `/metrics`."""
    bearer_token: Secret | None = None
    """When set, `/metrics` answers 401 to a scrape without `Authorization: Bearer <token>`."""


def parse_metrics(value: Any, path: str, reader: Reader) -> MetricsConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    listen = None
    if fields.get("listen") is not None:
        listen = _address(reader.string(fields["listen"], f"{path}.listen"), path, reader)
    token = None
    if "bearer_token" in fields:
        raw = fields["bearer_token"]
        token = reader.secret(raw, f"{path}.bearer_token")
        shown = token.reveal() if token is not None else ""
        reported = token is None and raw is not None and not isinstance(raw, str)
        usable = shown.isascii() and shown.isprintable() and " " not in shown
        if not reported and not (shown and usable):
            # An empty value (`${TOKEN:-}`) must not quietly leave /metrics open.
            reader.report(
                f"{path}.bearer_token", "must be a non-empty token of printable ASCII, no spaces"
            )
            token = None
    return MetricsConfig(listen=listen, bearer_token=token)


def _address(text: str, path: str, reader: Reader) -> tuple[str, int] | None:
    """`host:port`, `[ipv6]:port`; the host is required so that nothing listens more widely
    than was written."""
    if not text:
        return None
    host, separator, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host = ""
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        reader.report(f"{path}.listen", f"expected host:port, like 127.0.0.1:9464; got {text!r}")
        return None
    return host, int(port)
