"""The `insights` section of a report: the four insights of `telemetry.insights` over the
report's scope and range, as tables with their evidence. Prices for the cheaper-model insight
are the shipped price table's (a report is made apart from the running config); the
suggestions themselves go by the actual cost per request recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from providers.pricing import PriceTable
from telemetry.insights.cheaper_models import CheaperModels
from telemetry.insights.error_summaries import SUMMARIES
from telemetry.insights.errors import Errors
from telemetry.insights.findings import read_insights
from telemetry.insights.max_tokens import MaxTokens
from telemetry.insights.notes import (
    cheaper_model_notes,
    error_notes,
    max_tokens_notes,
    repeat_notes,
)
from telemetry.insights.repeats import Repeats
from telemetry.insights.scope import InsightScope
from telemetry.reports.document import Column, Figure, Section, Table, Value
from telemetry.reports.queries import Reader

ROWS: Final = 20
_SMALL: Final = Decimal("0.000001")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _small(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_SMALL)


def _points(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _cheaper(found: CheaperModels) -> Table:
    """Each workload's busiest model against every cheaper one scored: the question a reader
    of the report has (the console and the API also compare the other served models)."""
    rows: list[tuple[Value, ...]] = []
    for workload in found.workloads:
        if not workload.served:
            continue
        busiest = workload.served[0]
        served = {m.provider_model: m for m in workload.served}
        for c in workload.comparisons:
            if c.current != busiest.provider_model:
                continue
            new = served[c.candidate]
            rows.append(
                (
                    f"{workload.requested_model} · {workload.evaluator}",
                    c.current,
                    c.candidate,
                    c.verdict.replace("_", " "),
                    _points(busiest.scores.mean) if busiest.scores else None,
                    busiest.scores.count if busiest.scores else 0,
                    _points(new.scores.mean) if new.scores else None,
                    new.scores.count if new.scores else 0,
                    _points(c.difference.lower) if c.difference else None,
                    _small(busiest.cost_per_request),
                    _small(new.cost_per_request),
                    c.monthly_saving,
                )
            )
    return Table(
        name="cheaper_models",
        title="Cheaper models of equal quality",
        columns=(
            Column(name="workload", title="Workload · evaluator"),
            Column(name="current", title="Now"),
            Column(name="candidate", title="Cheaper"),
            Column(name="verdict", title="Verdict"),
            Column(name="current_score", title="Score now"),
            Column(name="current_scores", title="n now", unit="requests"),
            Column(name="candidate_score", title="Score cheaper"),
            Column(name="candidate_scores", title="n cheaper", unit="requests"),
            Column(name="difference_low", title="Diff., low end"),
            Column(name="current_cost", title="Cost now", unit="USD"),
            Column(name="candidate_cost", title="Cost cheaper", unit="USD"),
            Column(name="monthly_saving", title="Saving a month", unit="USD"),
        ),
        rows=tuple(rows[:ROWS]),
    )


def _repeats(found: Repeats) -> Table:
    return Table(
        name="repeats",
        title="Repeated requests the cache missed",
        columns=(
            Column(name="fingerprint", title="Fingerprint"),
            Column(name="model", title="Model"),
            Column(name="requests", title="Requests", unit="requests"),
            Column(name="repeats", title="Repeats", unit="requests"),
            Column(name="cost", title="Cost", unit="USD"),
            Column(name="saving", title="Cache would save", unit="USD"),
            Column(name="first_seen", title="First seen"),
            Column(name="last_seen", title="Last seen"),
            Column(name="example_trace", title="Example trace"),
        ),
        rows=tuple(
            (
                g.fingerprint,
                g.requested_model,
                g.requests,
                g.repeats,
                g.cost,
                _small(g.saving),
                _iso(g.first_seen),
                _iso(g.last_seen),
                g.example_traces[0] if g.example_traces else None,
            )
            for g in found.groups[:ROWS]
        ),
    )


def _max_tokens(found: MaxTokens, keys: dict[str, str]) -> Table:
    return Table(
        name="max_tokens",
        title="max_tokens against answers",
        columns=(
            Column(name="model", title="Model"),
            Column(name="key", title="Key"),
            Column(name="requests", title="Requests", unit="requests"),
            Column(name="max_tokens", title="Usual max_tokens", unit="tokens"),
            Column(name="completion_p99", title="p99 answer, at most", unit="tokens"),
            Column(name="completion_max", title="Longest answer", unit="tokens"),
            Column(name="flagged", title="Far above"),
            Column(name="suggested", title="Suggested max_tokens", unit="tokens"),
        ),
        rows=tuple(
            (
                g.requested_model,
                keys.get(g.api_key_id, g.api_key_id) if g.api_key_id else "(no key)",
                g.requests,
                g.typical_max_tokens,
                g.completion_p99,
                g.completion_max,
                "yes" if g.flagged else "no",
                g.suggested_max_tokens if g.flagged else None,
            )
            for g in found.groups[:ROWS]
        ),
    )


def _errors(found: Errors) -> Table:
    shown = found.groups[:ROWS]
    # A summary column only when one was written (on the Insights page, kept for some hours).
    summary = (Column(name="summary", title="Summary"),) if any(g.summary for g in shown) else ()
    return Table(
        name="errors",
        title="Errors by provider, type and message",
        columns=(
            Column(name="provider", title="Provider"),
            Column(name="error_type", title="Type"),
            Column(name="message", title="Message"),
            Column(name="count", title="Count", unit="requests"),
            Column(name="first_seen", title="First seen"),
            Column(name="last_seen", title="Last seen"),
            Column(name="example_trace", title="Example trace"),
            *summary,
        ),
        rows=tuple(
            (
                g.provider,
                g.error_type or None,
                g.template or "(no message)",
                g.count,
                _iso(g.first_seen),
                _iso(g.last_seen),
                g.example_traces[0] if g.example_traces else None,
                *((g.summary,) if summary else ()),
            )
            for g in shown
        ),
    )


async def insights(reader: Reader) -> Section:
    scope = InsightScope(reader.engine, reader.scope, reader.start, reader.end)
    found = await read_insights(
        scope, PriceTable.shipped(), summarise_errors=SUMMARIES.summariser(reader.scope)
    )
    cheaper = found.cheaper_models
    saving = sum((c.monthly_saving or Decimal(0) for _, c in cheaper.suggestions), Decimal(0))
    keys = await reader.key_names()
    return Section(
        name="insights",
        title="Insights",
        figures=(
            Figure(
                name="cheaper_model_saving",
                title="Cheaper models could save a month",
                value=saving,
                unit="USD",
            ),
            Figure(name="repeats", title="Repeats the cache missed", value=found.repeats.repeats),
            Figure(
                name="repeats_saving",
                title="Caching repeats would have saved",
                value=_small(found.repeats.saving),
                unit="USD",
            ),
            Figure(
                name="max_tokens_flagged",
                title="max_tokens far above answers",
                value=len(found.max_tokens.flagged),
            ),
            Figure(name="errors", title="Failed provider calls", value=found.errors.errors),
            Figure(name="error_groups", title="Error groups", value=len(found.errors.groups)),
        ),
        tables=(
            _cheaper(cheaper),
            _repeats(found.repeats),
            _max_tokens(found.max_tokens, keys),
            _errors(found.errors),
        ),
        notes=(
            "Cheaper models: scores are means on the 0-100 scale with n scores each; "
            '"Diff., low end" is the low end of the 95 % interval of the cheaper model\'s score '
            "minus the current one's; costs are actual means per request; the saving scales "
            "the range's requests to 30 days.",
            *cheaper_model_notes(cheaper),
            *repeat_notes(found.repeats),
            *max_tokens_notes(found.max_tokens),
            *error_notes(found.errors),
        ),
    )
