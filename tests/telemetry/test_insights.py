"""The insights readers (`telemetry.insights`) over a planted week on SQLite and Postgres
(`tests.telemetry.insights_history`): each finds what was planted in its workspace and range,
and nothing of another workspace, of the week before or of a judge's own calls."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.pricing import PriceTable
from telemetry.insights.cheaper_models import find_cheaper_models
from telemetry.insights.errors import ErrorGroup, find_errors
from telemetry.insights.findings import read_insights
from telemetry.insights.max_tokens import find_max_tokens
from telemetry.insights.repeats import find_repeats
from telemetry.insights.scope import InsightScope
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.telemetry.insights_history import END, START, Planted, plant_insights

OTHER = "ws-other"


@pytest.fixture
async def planted(engine: AsyncEngine) -> Planted:
    return await plant_insights(engine, DEFAULT_WORKSPACE_ID, OTHER)


def scope_of(engine: AsyncEngine, workspace: str | None = DEFAULT_WORKSPACE_ID) -> InsightScope:
    return InsightScope(engine, workspace, START, END)


async def test_a_cheaper_model_of_equal_quality_is_suggested_with_its_evidence(
    engine: AsyncEngine, planted: Planted
) -> None:
    found = await find_cheaper_models(scope_of(engine), PriceTable.shipped())
    by_model = {w.requested_model: w for w in found.workloads}
    assert set(by_model) == {"assistant", "solo"}
    assistant = by_model["assistant"]
    served = {m.provider_model: m for m in assistant.served}
    assert served["gpt-4o"].requests == 100
    assert served["gpt-4o"].cost_per_request == Decimal("0.01")
    assert served["gpt-4o"].scores is not None and served["gpt-4o"].scores.count == 40
    assert served["gpt-4o"].scores.mean == pytest.approx(80.0)
    verdicts = {(c.current, c.candidate): c for c in assistant.comparisons}
    best = verdicts[("gpt-4o", "gpt-4o-mini")]
    assert best.verdict == "equal_quality"
    assert best.difference is not None
    assert best.difference.mean == pytest.approx(-1.0)
    assert -2.0 < best.difference.lower < -1.0 < best.difference.upper < 0
    assert best.saving_per_request == Decimal("0.009")
    # 100 calls a week at $0.009 less each: 100 * 0.009 * 30 / 7 a month.
    assert best.monthly_saving == Decimal("3.86")
    assert verdicts[("gpt-4o", "cheap-bad")].verdict == "worse"
    assert verdicts[("gpt-4o", "tiny")].verdict == "not_enough_data"
    assert "tiny has 5" in verdicts[("gpt-4o", "tiny")].reason
    (first, *_) = found.suggestions
    assert (first[1].current, first[1].candidate) == ("gpt-4o", "gpt-4o-mini")
    assert by_model["solo"].comparisons == ()
    assert by_model["solo"].note is not None and "Only solo served" in by_model["solo"].note


async def test_without_scores_the_cheaper_model_insight_says_what_it_needs(
    engine: AsyncEngine,
) -> None:
    found = await find_cheaper_models(scope_of(engine), PriceTable.shipped())
    assert found.workloads == ()
    assert "evaluator" in found.notes[0]


async def test_identical_uncached_requests_are_grouped_with_what_caching_saves(
    engine: AsyncEngine, planted: Planted
) -> None:
    found = await find_repeats(scope_of(engine))
    (group,) = found.groups
    assert group.requested_model == "faq"
    assert (group.requests, group.repeats) == (5, 4)
    assert group.cost == Decimal("0.05")
    assert group.saving == Decimal("0.04")
    assert set(group.example_traces) <= set(planted.faq_traces)
    assert len(group.example_traces) == 2
    assert START < group.first_seen < group.last_seen < END
    assert (found.repeats, found.saving, found.more_groups) == (4, Decimal("0.04"), 0)
    # Every answered uncached user call of the week; three of them without a stored prompt.
    assert found.skipped == 3 + 100 + 40 + 40 + 5 + 10 + 80
    assert found.compared == 5 + 2


async def test_max_tokens_far_above_the_answers_is_flagged(
    engine: AsyncEngine, planted: Planted
) -> None:
    found = await find_max_tokens(scope_of(engine))
    by_model = {g.requested_model: g for g in found.groups}
    assert set(by_model) == {"summariser", "writer"}
    summariser, writer = by_model["summariser"], by_model["writer"]
    assert summariser.flagged and not writer.flagged
    assert (summariser.requests, summariser.typical_max_tokens) == (40, 4096)
    assert summariser.completion_max == 200
    assert 200 <= summariser.completion_p99 <= 300
    assert summariser.suggested_max_tokens == 400
    assert (writer.typical_max_tokens, writer.completion_max) == (1024, 895)
    assert found.flagged == (summariser,)
    assert found.without_max_tokens == planted.without_max_tokens


async def test_errors_group_by_provider_type_and_message_fingerprint(
    engine: AsyncEngine, planted: Planted
) -> None:
    found = await find_errors(scope_of(engine))
    assert found.errors == 8
    rate, overloaded = found.groups
    assert (rate.provider, rate.error_type, rate.count) == ("openai", "rate_limit", 6)
    assert rate.template == (
        "Rate limit reached for <id> in organization on tokens per min: Limit <n>, Used <n>."
    )
    assert "org-a5b35c" in rate.example_message or "org-a0b0c" in rate.example_message
    assert set(rate.example_traces) <= set(planted.rate_limit_traces)
    assert rate.example_traces == tuple(reversed(planted.rate_limit_traces[-3:]))
    assert rate.first_seen < rate.last_seen
    assert (overloaded.provider, overloaded.count, overloaded.template) == (
        "anthropic",
        2,
        "Overloaded",
    )
    assert rate.summary is None


async def test_a_summariser_given_to_the_errors_fills_the_groups_it_shown(
    engine: AsyncEngine, planted: Planted
) -> None:
    seen: list[int] = []

    async def summarise(groups: object) -> list[ErrorGroup]:
        from telemetry.insights.errors import with_summary

        assert isinstance(groups, list)
        seen.append(len(groups))
        return [with_summary(g, f"{g.provider} said {g.error_type}") for g in groups]

    found = await find_errors(scope_of(engine), summarise=summarise)
    assert seen == [2]
    assert [g.summary for g in found.groups] == [
        "openai said rate_limit",
        "anthropic said overloaded_error",
    ]


async def test_every_workspace_reads_both_and_another_workspace_reads_its_own(
    engine: AsyncEngine, planted: Planted
) -> None:
    everything = await read_insights(scope_of(engine, None), PriceTable.shipped())
    assert everything.errors.errors == 16
    assert everything.repeats.groups[0].requests == 10
    other = await read_insights(scope_of(engine, OTHER), PriceTable.shipped())
    assert other.errors.errors == 8
    assert set(other.errors.groups[0].example_traces).isdisjoint(planted.rate_limit_traces)
    nobody = await read_insights(scope_of(engine, "ws-nobody"), PriceTable.shipped())
    assert nobody.errors.groups == () and nobody.repeats.groups == ()
    assert nobody.max_tokens.groups == () and nobody.cheaper_models.workloads == ()


async def test_a_group_cut_short_by_the_row_limit_is_left_out_not_misread(
    engine: AsyncEngine, planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telemetry.insights import max_tokens

    # summariser's answers fill five buckets; three rows read would give a wrong percentile
    monkeypatch.setattr(max_tokens, "HISTOGRAM_ROWS", 3)
    found = await find_max_tokens(scope_of(engine))
    assert found.groups == () and found.cut
    monkeypatch.setattr(max_tokens, "HISTOGRAM_ROWS", 6)
    found = await find_max_tokens(scope_of(engine))
    assert [g.requested_model for g in found.groups] == ["summariser"] and found.cut
