"""The `live` section of the config: how the live feed (`GET /admin/api/live`) holds viewers.

```yaml
live:
  viewer_queue: 256              # traces a viewer may fall behind before it is dropped
  max_viewers: 32                # viewers per worker; one more is answered 503
  rows_per_second: 100           # per viewer: matching traces past it are counted, not sent (0: all)
  channel_prefix: steerway:live  # Redis pub/sub channels shared by the workers
```

Every field is optional. The channels are used only when `STEERWAY_REDIS_URL` is set; two
gateways sharing one Redis need different prefixes to keep their feeds apart.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

SECTION_FIELDS: Final = ("viewer_queue", "max_viewers", "rows_per_second", "channel_prefix")


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    viewer_queue: int = 256
    """Traces waiting to be sent to one viewer; a viewer that falls further behind is dropped
    (its stream ends with a `dropped` event, and the client reconnects)."""
    max_viewers: int = 32
    """Viewers connected to one worker at once."""
    rows_per_second: float = 100.0
    """Traces sent to one viewer per second at most; the rest still count in its statistics.
    0 sends every matching trace."""
    channel_prefix: str = "steerway:live"
    """Prefix of the Redis pub/sub channels (`<prefix>:traces`, `<prefix>:watching`)."""


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def string(self, value: Any, path: str, *, default: str = "") -> str: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def non_negative_number(self, value: Any, path: str, *, default: float) -> float: ...


def parse_live(value: Any, path: str, reader: Reader) -> LiveConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = LiveConfig()
    return LiveConfig(
        viewer_queue=reader.positive_integer(
            fields.get("viewer_queue"), f"{path}.viewer_queue", default=defaults.viewer_queue
        ),
        max_viewers=reader.positive_integer(
            fields.get("max_viewers"), f"{path}.max_viewers", default=defaults.max_viewers
        ),
        rows_per_second=reader.non_negative_number(
            fields.get("rows_per_second"),
            f"{path}.rows_per_second",
            default=defaults.rows_per_second,
        ),
        channel_prefix=reader.string(
            fields.get("channel_prefix"),
            f"{path}.channel_prefix",
            default=defaults.channel_prefix,
        ),
    )
