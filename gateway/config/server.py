"""The `server` section of the config: how long a client may take, and how many may connect.

```yaml
server:
  header_timeout_seconds: 10     # the whole header block of a request
  body_timeout_seconds: 60       # the whole body, from the end of the headers
  keepalive_timeout_seconds: 5   # an idle connection between requests
  write_timeout_seconds: 60      # a client that stops reading an answer
  max_header_bytes: 65536        # request line and headers together
  max_connections: 4096          # per worker, lowered to fit the open-file limit
```

`steerway serve` applies these to every connection it accepts (`gateway.entry.server_connections`);
they do not touch upstream calls, whose timeouts are the providers' `timeouts`.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

SECTION_FIELDS: Final = (
    "header_timeout_seconds",
    "body_timeout_seconds",
    "keepalive_timeout_seconds",
    "write_timeout_seconds",
    "max_header_bytes",
    "max_connections",
)


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True):
    header_timeout_seconds: float = 10.0
    """From the connection (or the first byte of a later request on it) to the end of the
    request's headers; a client still sending them is answered 408 and disconnected."""
    body_timeout_seconds: float = 60.0
    """From the end of the headers to the end of the body, so a body trickled a byte at a time
    is cut (408) however steadily it arrives."""
    keepalive_timeout_seconds: float = 5.0
    """An open connection with no request in progress is closed after this long."""
    write_timeout_seconds: float = 60.0
    """A client that reads nothing of its answer for this long while the send buffer is full
    is disconnected."""
    max_header_bytes: int = 64 * 1024
    """The request line and headers together; a request with more is answered 431. (The
    parser itself sets no limit: without this, one connection could send gigabytes of headers
    into memory within the header timeout.)"""
    max_connections: int = 4096
    """Open connections per worker process; at the cap, a new connection replaces the one
    that has waited longest without a request in progress, or is refused (503) when every
    connection carries one. Lowered at start to fit the open-file limit."""


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...


def parse_server(value: Any, path: str, reader: Reader) -> ServerConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = ServerConfig()
    seconds = {
        name: reader.positive_number(
            fields.get(name), f"{path}.{name}", default=getattr(defaults, name)
        )
        for name in SECTION_FIELDS
        if name.endswith("_seconds")
    }
    return ServerConfig(
        **seconds,
        max_header_bytes=reader.positive_integer(
            fields.get("max_header_bytes"),
            f"{path}.max_header_bytes",
            default=defaults.max_header_bytes,
        ),
        max_connections=reader.positive_integer(
            fields.get("max_connections"),
            f"{path}.max_connections",
            default=defaults.max_connections,
        ),
    )
