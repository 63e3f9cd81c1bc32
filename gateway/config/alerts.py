"""The `alerts` section of the config: how often alert rules are evaluated and where, and the
channels and rules kept in the file (applied at start by `telemetry.alerts.config_sync`).

```yaml
alerts:
  interval: 30         # seconds between evaluations of every rule (1 to 3600)
  run_in_serve: true   # false: `steerway serve` leaves evaluation to `steerway worker`
  channels:
    - name: on-call
      workspace: default          # a slug; default when left out
      kind: pagerduty
      secrets: {routing_key: ${PD_ROUTING_KEY}}
  rules:
    - name: Error rate by model
      metric: error_rate
      group_by: [model]
      critical: 0.05
      channels: [on-call]         # channel names of the rule's workspace
```
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from gateway.config.alerts_items import parse_channels, parse_rules
from telemetry.alerts.config_items import FileChannel, FileRule

SECTION_FIELDS: Final = ("interval", "run_in_serve", "channels", "rules")
MIN_INTERVAL: Final = 1.0
MAX_INTERVAL: Final = 3600.0


class AlertsConfig(msgspec.Struct, frozen=True, kw_only=True):
    interval: float = 30.0
    """Seconds between two rounds of the alert evaluator (`telemetry.alerts.evaluator`): an
    alert fires at most this long after its condition has held for its rule's `for`."""
    run_in_serve: bool = True
    """Whether `steerway serve` evaluates alert rules; false where a `steerway worker` does."""
    channels: tuple[FileChannel, ...] = ()
    rules: tuple[FileRule, ...] = ()


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def string(self, value: Any, path: str, *, default: str = "") -> str: ...

    def reference(self, value: Any, path: str) -> str | None: ...

    def report(self, path: str, message: str) -> None: ...


def parse_alerts(value: Any, path: str, reader: Reader) -> AlertsConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = AlertsConfig()
    where = f"{path}.interval"
    interval = reader.positive_number(fields.get("interval"), where, default=defaults.interval)
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        reader.report(
            where, f"expected seconds from {MIN_INTERVAL:g} to {MAX_INTERVAL:g}, got {interval:g}"
        )
        interval = defaults.interval
    run_in_serve = fields.get("run_in_serve", defaults.run_in_serve)
    if not isinstance(run_in_serve, bool):
        shown = repr(run_in_serve)[:40]
        reader.report(f"{path}.run_in_serve", f"expected true or false, got {shown}")
        run_in_serve = defaults.run_in_serve
    channels = parse_channels(fields.get("channels"), f"{path}.channels", reader)
    rules = parse_rules(fields.get("rules"), f"{path}.rules", reader)
    return AlertsConfig(
        interval=interval, run_in_serve=run_in_serve, channels=channels, rules=rules
    )
