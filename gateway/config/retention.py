"""The `telemetry.retention` section of the config: days kept per kind of record.

```yaml
telemetry:
  retention:
    content: 7          # prompts and answers cleared after a week, the interaction kept
    traces: 90          # traces and their violations; spans, decisions, interactions follow
    spans: 30           # at most `traces`
    decisions: 90
    interactions: 90
    rollups: {minute: 14, hour: 400, day: null}
    interval_s: 3600
    partitions_ahead: 2
    batch_size: 5000
```

Every field is optional; a kind left out (or null) is kept forever, the default for all.
"""

from __future__ import annotations

import itertools
from typing import Any, Final, Protocol

from telemetry.retention.policy import RetentionConfig


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def report(self, path: str, message: str) -> None: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def optional_positive_integer(self, value: Any, path: str) -> int | None: ...


_RETENTION_KINDS: Final = ("content", "interactions", "traces", "spans", "decisions")
_ROLLUP_LEVELS: Final = ("minute", "hour", "day")


def parse_retention(value: Any, path: str, reader: Reader) -> RetentionConfig:
    fields = reader.fields(
        value,
        path,
        (*_RETENTION_KINDS, "rollups", "interval_s", "partitions_ahead", "batch_size"),
    )
    days = {
        kind: reader.optional_positive_integer(fields.get(kind), f"{path}.{kind}")
        for kind in _RETENTION_KINDS
    }
    rollups_path = f"{path}.rollups"
    levels = reader.fields(fields.get("rollups"), rollups_path, _ROLLUP_LEVELS)
    rollup_days = {
        level: reader.optional_positive_integer(levels.get(level), f"{rollups_path}.{level}")
        for level in _ROLLUP_LEVELS
    }
    defaults = RetentionConfig()
    retention = RetentionConfig(
        content=days["content"],
        interactions=days["interactions"],
        traces=days["traces"],
        spans=days["spans"],
        decisions=days["decisions"],
        rollup_minute=rollup_days["minute"],
        rollup_hour=rollup_days["hour"],
        rollup_day=rollup_days["day"],
        interval_s=reader.positive_number(
            fields.get("interval_s"), f"{path}.interval_s", default=defaults.interval_s
        ),
        partitions_ahead=reader.positive_integer(
            fields.get("partitions_ahead"),
            f"{path}.partitions_ahead",
            default=defaults.partitions_ahead,
        ),
        batch_size=reader.positive_integer(
            fields.get("batch_size"), f"{path}.batch_size", default=defaults.batch_size
        ),
    )
    _check_retention_order(retention, days, rollup_days, path, reader)
    return retention


def _check_retention_order(
    retention: RetentionConfig,
    days: dict[str, int | None],
    rollup_days: dict[str, int | None],
    path: str,
    reader: Reader,
) -> None:
    """A part is never kept longer than what it belongs to: spans, decisions and interactions
    than their trace, content than its interaction, finer roll-ups than coarser ones (which
    are summed from them)."""
    traces = retention.traces
    for kind in ("spans", "decisions", "interactions"):
        kept = days[kind]
        if kept is not None and _kept_longer(kept, traces):
            reader.report(
                f"{path}.{kind}",
                f"{kept} days is longer than traces ({_days_shown(traces)}): "
                "a trace's parts cannot outlive it",
            )
    content, interactions = retention.content, retention.interactions_days()
    if content is not None and _kept_longer(content, interactions):
        reader.report(
            f"{path}.content",
            f"{content} days is longer than interactions ({_days_shown(interactions)})",
        )
    for finer, coarser in itertools.pairwise(_ROLLUP_LEVELS):
        if _kept_longer(rollup_days[finer], rollup_days[coarser]):
            reader.report(
                f"{path}.rollups.{finer}",
                f"{_days_shown(rollup_days[finer])} is longer than rollups.{coarser} "
                f"({_days_shown(rollup_days[coarser])})",
            )


def _kept_longer(days: int | None, than: int | None) -> bool:
    """None is forever."""
    if than is None:
        return False
    return days is None or days > than


def _days_shown(days: int | None) -> str:
    return "kept forever" if days is None else f"{days} days"
