"""The `responses` section of the config: how long the Responses API keeps what it stores.

```yaml
responses:
  retention_days: 30     # a stored response (previous_response_id, GET) is kept this long
  write_queue: 10000     # responses waiting to be written; past it new ones are not stored
```

Every field is optional.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

SECTION_FIELDS: Final = ("retention_days", "write_queue")


class ResponsesConfig(msgspec.Struct, frozen=True, kw_only=True):
    retention_days: int = 30
    """OpenAI keeps stored responses for 30 days; so does the gateway unless told otherwise."""
    write_queue: int = 10_000
    """Stored responses waiting for the background writer. It only fills while the database is
    unreachable; then a response that does not fit is answered but not kept (and counted)."""


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...


def parse_responses(value: Any, path: str, reader: Reader) -> ResponsesConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = ResponsesConfig()
    return ResponsesConfig(
        retention_days=reader.positive_integer(
            fields.get("retention_days"), f"{path}.retention_days", default=defaults.retention_days
        ),
        write_queue=reader.positive_integer(
            fields.get("write_queue"), f"{path}.write_queue", default=defaults.write_queue
        ),
    )
