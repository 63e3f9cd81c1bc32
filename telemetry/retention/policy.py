"""How long each kind of record is kept: the `telemetry.retention` section of the config."""

from __future__ import annotations

import msgspec


class RetentionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How many days each kind of record is kept (`telemetry.retention`); None keeps it forever,
    the default for every kind. Spans, decisions and interactions belong to a trace: unset, they
    follow `traces`, and they are never kept longer than it."""

    content: int | None = None
    """Prompts and answers of interactions: set to null after this many days, the rest kept."""
    interactions: int | None = None
    traces: int | None = None
    """Traces with their guardrail violations."""
    spans: int | None = None
    decisions: int | None = None
    rollup_minute: int | None = None
    rollup_hour: int | None = None
    rollup_day: int | None = None
    interval_s: float = 3600.0
    """How often the job runs: it drops expired partitions and creates the ones ahead."""
    partitions_ahead: int = 2
    """Postgres: days of partitions kept ready ahead of today."""
    batch_size: int = 5000
    """Rows removed per statement where rows are deleted one by one (SQLite, content, roll-ups,
    Postgres' default partitions), each in its own short transaction."""

    def spans_days(self) -> int | None:
        return self.spans if self.spans is not None else self.traces

    def decisions_days(self) -> int | None:
        return self.decisions if self.decisions is not None else self.traces

    def interactions_days(self) -> int | None:
        return self.interactions if self.interactions is not None else self.traces

    def enabled(self) -> bool:
        """Whether any kind expires at all; when none does, the job does nothing but keep
        partitions ahead on Postgres."""
        return any(
            days is not None
            for days in (
                self.content,
                self.traces,
                self.spans,
                self.decisions,
                self.interactions,
                self.rollup_minute,
                self.rollup_hour,
                self.rollup_day,
            )
        )
