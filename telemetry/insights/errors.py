"""Provider errors grouped by provider, error type and the fingerprint of their message.

The database counts each distinct (provider, error type, message) in the range with its first
and last time and two of its traces; messages are then reduced to templates
(`fingerprint.message_template`) and the groups merged here. Only the `MAX_MESSAGES` most
frequent distinct messages are read, so a flood of unique messages cannot make the read slow;
the answer says when more were left out.

A group may carry a `summary`, filled by `summarise`: it is given the groups shown and answers
them with their summaries (`error_summaries.ErrorSummaryCache.summariser` fills the summaries a
model wrote on demand).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa

from telemetry.insights.fingerprint import fingerprint, message_template
from telemetry.insights.scope import InsightScope
from telemetry.schema import ai_interactions

MAX_MESSAGES: Final = 2000
DEFAULT_TOP: Final = 25
EXAMPLES: Final = 3
MAX_EXAMPLE_MESSAGE: Final = 500


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    fingerprint: str
    provider: str
    error_type: str
    template: str
    example_message: str
    count: int
    first_seen: datetime
    last_seen: datetime
    example_traces: tuple[str, ...]
    """The latest traces of the group, newest first (at most `EXAMPLES`)."""
    example_messages: tuple[str, ...] = ()
    """Up to `EXAMPLES` distinct messages of the group as stored, the most frequent first."""
    summary: str | None = None
    """A reader's summary of the group; None until one is written (`ErrorSummariser`)."""


ErrorSummariser = Callable[[Sequence[ErrorGroup]], Awaitable[Sequence[ErrorGroup]]]
"""Given the groups shown, answers them with `summary` filled where it could write one."""


@dataclass(frozen=True, slots=True)
class Errors:
    groups: tuple[ErrorGroup, ...]
    errors: int
    """Failed provider calls in the range."""
    more_groups: int
    messages_left_out: int
    """Distinct messages beyond the `MAX_MESSAGES` most frequent, not grouped."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Merging:
    def __init__(self, provider: str, error_type: str, template: str, message: str) -> None:
        self.provider, self.error_type, self.template = provider, error_type, template
        self.message = message
        self.messages: list[str] = []
        self.count = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.traces: list[tuple[datetime, str]] = []

    def add(
        self,
        message: str,
        count: int,
        first: datetime,
        last: datetime,
        trace_ids: Sequence[str],
    ) -> None:
        if len(self.messages) < EXAMPLES and message not in self.messages:
            self.messages.append(message[:MAX_EXAMPLE_MESSAGE])
        self.count += count
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        self.traces.extend((last, trace_id) for trace_id in trace_ids)

    def group(self) -> ErrorGroup:
        assert self.first is not None and self.last is not None
        newest = sorted(self.traces, reverse=True)
        return ErrorGroup(
            fingerprint=fingerprint(self.provider, self.error_type, self.template),
            provider=self.provider,
            error_type=self.error_type,
            template=self.template,
            example_message=self.message[:MAX_EXAMPLE_MESSAGE],
            count=self.count,
            first_seen=self.first,
            last_seen=self.last,
            example_traces=tuple(dict.fromkeys(t for _, t in newest))[:EXAMPLES],
            example_messages=tuple(self.messages),
        )


async def find_errors(
    scope: InsightScope,
    *,
    top: int = DEFAULT_TOP,
    summarise: ErrorSummariser | None = None,
) -> Errors:
    i = ai_interactions.c
    where = [*scope.interactions_where(), i.status == "error"]
    count = sa.func.count()
    distinct = (
        sa.select(
            i.provider,
            sa.func.coalesce(i.error_type, ""),
            sa.func.coalesce(i.error_message, ""),
            count,
            sa.func.min(i.started_at),
            sa.func.max(i.started_at),
            sa.func.min(i.trace_id),
            sa.func.max(i.trace_id),
        )
        .where(*where)
        .group_by(i.provider, i.error_type, i.error_message)
        .order_by(count.desc())
        .limit(MAX_MESSAGES + 1)
    )
    triples = (
        sa.select(i.provider, i.error_type, i.error_message, count.label("n"))
        .where(*where)
        .group_by(i.provider, i.error_type, i.error_message)
        .subquery()
    )
    totals = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(triples.c.n), 0))
    async with scope.engine.connect() as connection:
        rows = (await connection.execute(distinct)).all()
        messages, errors = (await connection.execute(totals)).one()
    merged: dict[tuple[str, str, str], _Merging] = {}
    for provider, error_type, message, n, first, last, low, high in rows[:MAX_MESSAGES]:
        template = message_template(message)
        name = (provider, error_type, template)
        if name not in merged:
            merged[name] = _Merging(provider, error_type, template, message)
        merged[name].add(message, int(n), _aware(first), _aware(last), (high, low))
    ordered = sorted(merged.values(), key=lambda m: (-m.count, m.provider, m.error_type))
    groups: Sequence[ErrorGroup] = [m.group() for m in ordered[:top]]
    if summarise is not None and groups:
        groups = await summarise(groups)
    return Errors(
        groups=tuple(groups),
        errors=int(errors),
        more_groups=max(len(ordered) - top, 0),
        messages_left_out=max(int(messages) - MAX_MESSAGES, 0),
    )


def with_summary(group: ErrorGroup, summary: str) -> ErrorGroup:
    return replace(group, summary=summary)
