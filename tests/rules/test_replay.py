"""Replay: real compiled rules over recorded requests, and reading those requests back from
SQLite and Postgres."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from providers.pricing import ModelPrice, PriceTable
from rules.compiler import compile_rules
from rules.conditions import fields_read
from rules.engine import RuleSet
from rules.replay import Replayer, ReplayReport, money, reads_prompt, replay
from rules.simulate import CatalogDeployment, CatalogModel, RouteCatalog, candidate_rules
from telemetry.ids import uuid7_hex
from telemetry.queries import REPLAY_MAX_REQUESTS, replay_history
from telemetry.records import DecisionRecord, InteractionRecord, TraceBundle, TraceRecord
from telemetry.schema import DEFAULT_WORKSPACE_ID
from telemetry.writers import BatchWriter

PRICES = PriceTable.shipped()


def price(model: str) -> ModelPrice:
    found = PRICES.lookup(model)
    assert found is not None, model
    return found


SMALL = price("mock-gpt")
BIG = price("mock-gpt-large")
MODELS = ("small", "big", "mixed", "unpriced")
PROVIDERS = ("mock",)


def deployment(model: str, weight: float = 1.0) -> CatalogDeployment:
    return CatalogDeployment(
        provider="mock", model=model, weight=weight, price=PRICES.lookup(model)
    )


CATALOG = RouteCatalog(
    {
        "small": CatalogModel(deployments=(deployment("mock-gpt"),)),
        "big": CatalogModel(deployments=(deployment("mock-gpt-large"),)),
        "mixed": CatalogModel(
            deployments=(deployment("mock-gpt", 3), deployment("mock-gpt-large", 1))
        ),
        "unpriced": CatalogModel(deployments=(deployment("made-up-model"),)),
    },
    PRICES,
)
STARTED = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)  # a Saturday
PROMPT, COMPLETION = 1000, 200


def rules(*documents: dict[str, Any]) -> RuleSet:
    return compile_rules(list(documents), models=MODELS, providers=PROVIDERS)


def rule(rule_id: str, when: Any, then: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "when": when, "then": then, **extra}


def recorded(**changes: Any) -> dict[str, Any]:
    """A recorded chat request to `small`, served by mock/mock-gpt, as `replay_history` reads it."""
    row: dict[str, Any] = {
        "trace_id": uuid7_hex(),
        "workspace_id": DEFAULT_WORKSPACE_ID,
        "api_key_id": "key-1",
        "key_name": "batch",
        "end_user": None,
        "route": "/v1/chat/completions",
        "started_at": STARTED,
        "status": "ok",
        "http_status": 200,
        "requested_model": "small",
        "provider": "mock",
        "provider_model": "mock-gpt",
        "tags": [],
        "metadata": {},
        "features": {"model": "small", "stream": False, "estimated_input_tokens": 20},
        "served_model": "small",
        "served_provider": "mock",
        "served_provider_model": "mock-gpt",
        "prompt_tokens": PROMPT,
        "completion_tokens": COMPLETION,
        "cached_tokens": 0,
        "cost_usd": SMALL.cost(PROMPT, COMPLETION, 0),
        "prompt": None,
        "rules_matched": None,
        "rules_route": None,
        "rules_denied": False,
    }
    row.update(changes)
    return row


def tagged(*tags: str, **changes: Any) -> dict[str, Any]:
    return recorded(tags=list(tags), **changes)


def by_rule(report: ReplayReport) -> dict[str, Any]:
    return {entry.rule_id: entry for entry in report.rules}


def mix(entries: Any) -> dict[str, float]:
    return {entry.name: entry.requests for entry in entries}


def cost(
    model_price: ModelPrice,
    prompt: int = PROMPT,
    completion: int = COMPLETION,
    cached: int | None = 0,
) -> Decimal:
    value = model_price.cost(prompt, completion, cached)
    assert value is not None
    return value


# --- matches, mix and cost ----------------------------------------------------------------------


def test_a_routing_rule_moves_matching_requests_and_prices_the_same_tokens() -> None:
    ruleset = rules(rule("premium", {"tags": "premium"}, {"route": "big"}))
    rows = [tagged("premium") for _ in range(3)] + [recorded() for _ in range(2)]
    report = replay(ruleset, rows, CATALOG)

    assert report.requests == 5
    premium = by_rule(report)["premium"]
    assert (premium.matched, premium.condition_held, premium.routed, premium.shadowed) == (
        3,
        3,
        3,
        0,
    )
    assert premium.reads == ["tags"]
    assert mix(report.model_mix.before) == {"small": 5}
    assert mix(report.model_mix.after) == {"big": 3, "small": 2}
    assert [(e.name, e.share) for e in report.model_mix.after] == [("big", 0.6), ("small", 0.4)]
    assert mix(report.deployment_mix.before) == {"mock/mock-gpt": 5}
    assert mix(report.deployment_mix.after) == {"mock/mock-gpt-large": 3, "mock/mock-gpt": 2}
    assert [(c.from_, c.to, c.requests) for c in report.changes] == [("small", "big", 3)]
    assert report.requests_rerouted == 3

    before = 5 * cost(SMALL)
    after = 2 * cost(SMALL) + 3 * cost(BIG)
    assert report.cost.before_usd == money(before)
    assert report.cost.after_usd == money(after)
    assert Decimal(report.cost.difference_usd) == after - before > 0
    assert (report.cost.compared_requests, report.cost.unknown_before) == (5, 0)
    assert report.cost.unknown_after == 0
    assert report.unavailable.requests == 0


def test_an_unchanged_route_keeps_its_recorded_cost() -> None:
    recorded_cost = Decimal("0.1234")  # not what today's price table says
    report = replay(rules(), [recorded(cost_usd=recorded_cost)], CATALOG)
    assert (report.cost.before_usd, report.cost.after_usd, report.cost.difference_usd) == (
        "0.1234",
        "0.1234",
        "0",
    )
    assert report.changes == []


def test_cached_tokens_and_embeddings_are_priced_as_the_proxy_prices_them() -> None:
    ruleset = rules(rule("all-big", {}, {"route": "big"}))
    chat = recorded(cached_tokens=400)
    embeddings = recorded(route="/v1/embeddings", completion_tokens=None)
    report = replay(ruleset, [chat, embeddings], CATALOG)
    expected = cost(BIG, cached=400) + cost(BIG, completion=0, cached=None)
    assert report.cost.after_usd == money(expected)
    assert report.cost.unknown_after == 0


def test_denied_requests_cost_nothing_after_and_leave_the_mix() -> None:
    ruleset = rules(rule("no-internal", {"metadata.env": "internal"}, {"deny": True}))
    rows = [recorded(metadata={"env": "internal"}), recorded()]
    report = replay(ruleset, rows, CATALOG)
    assert (report.denied.before, report.denied.after) == (0, 1)
    assert by_rule(report)["no-internal"].denied == 1
    assert mix(report.model_mix.after) == {"small": 1}
    assert [(c.from_, c.to, c.requests) for c in report.changes] == [("small", None, 1)]
    assert report.cost.after_usd == money(cost(SMALL))
    assert report.cost.before_usd == money(2 * cost(SMALL))
    assert report.cost.compared_requests == 2


def test_a_request_denied_at_the_time_is_unknown_once_it_would_be_served() -> None:
    denied = recorded(
        served_model=None,
        served_provider=None,
        served_provider_model=None,
        provider=None,
        provider_model=None,
        prompt_tokens=None,
        completion_tokens=None,
        cost_usd=None,
        status="error",
        http_status=403,
        rules_matched=["old-deny"],
        rules_denied=True,
    )
    report = replay(rules(), [denied], CATALOG)
    assert (report.denied.before, report.denied.after) == (1, 0)
    assert mix(report.model_mix.before) == {}
    assert mix(report.model_mix.after) == {"small": 1}
    assert [(c.from_, c.to) for c in report.changes] == [(None, "small")]
    assert (report.cost.unknown_before, report.cost.unknown_after) == (0, 1)
    assert report.cost.compared_requests == 0

    still_denied = replay(rules(rule("old-deny", {}, {"deny": True})), [denied], CATALOG)
    assert (still_denied.denied.before, still_denied.denied.after) == (1, 1)
    assert still_denied.changes == []
    assert still_denied.cost.compared_requests == 1
    assert still_denied.cost.difference_usd == "0"


def test_unknown_prices_are_counted_apart_never_as_zero() -> None:
    ruleset = rules(rule("to-unpriced", {"tags": "x"}, {"route": "unpriced"}))
    rows = [tagged("x"), recorded(), recorded(cost_usd=None)]
    report = replay(ruleset, rows, CATALOG)
    assert report.cost.unknown_after == 2  # the unpriced model, and the unknown unchanged cost
    assert report.cost.unknown_before == 1
    assert report.cost.compared_requests == 1
    assert report.cost.before_usd == report.cost.after_usd == money(cost(SMALL))
    assert report.cost.difference_usd == "0"
    assert mix(report.deployment_mix.after) == {"mock/made-up-model": 1, "mock/mock-gpt": 2}


def test_a_route_the_config_does_not_have_is_unknown() -> None:
    ruleset = compile_rules([rule("gone", {}, {"route": "retired"})])  # no model check
    report = replay(ruleset, [recorded()], CATALOG)
    assert mix(report.model_mix.after) == {"retired": 1}
    assert report.cost.unknown_after == 1
    assert replay(ruleset, [recorded()]).cost.unknown_after == 1  # no catalog at all


def test_a_request_a_rule_routed_then_goes_to_its_requested_model_when_no_rule_does() -> None:
    routed = recorded(
        served_model="big",
        served_provider_model="mock-gpt-large",
        provider_model="mock-gpt-large",
        cost_usd=cost(BIG),
        rules_matched=["old-route"],
        rules_route="big",
    )
    report = replay(rules(), [routed], CATALOG)
    assert mix(report.model_mix.before) == {"big": 1}
    assert mix(report.model_mix.after) == {"small": 1}
    assert mix(report.deployment_mix.after) == {"mock/mock-gpt": 1}
    assert Decimal(report.cost.difference_usd) == cost(SMALL) - cost(BIG)

    kept = replay(
        candidate_rules(
            rules(rule("old-route", {}, {"route": "big"})),
            [rule("other", {"tags": "x"}, {"tag": ["x"]})],
            merge=True,
            models=MODELS,
            providers=PROVIDERS,
        ),
        [routed],
        CATALOG,
    )
    assert kept.changes == []
    assert kept.cost.difference_usd == "0"
    assert by_rule(kept)["old-route"].matched_recorded == 1


def test_a_weighted_split_counts_each_request_by_its_expected_share() -> None:
    ruleset = rules(
        rule(
            "ab",
            {},
            {
                "route": {
                    "targets": [{"model": "small", "weight": 3}, {"model": "big", "weight": 1}]
                }
            },
        )
    )
    report = replay(ruleset, [recorded(), recorded(end_user="alice")], CATALOG)
    assert mix(report.model_mix.after) == {"small": 1.5, "big": 0.5}
    assert [(c.from_, c.to, c.requests) for c in report.changes] == [("small", "big", 0.5)]
    assert report.requests_rerouted == 0.5
    expected_after = 2 * (cost(SMALL) * Decimal("0.75") + cost(BIG) * Decimal("0.25"))
    assert report.cost.after_usd == money(expected_after)
    assert "expected share" in report.split_method


def test_a_sticky_split_with_a_known_user_counts_the_side_the_user_hashes_to() -> None:
    split = {"targets": [{"model": "small", "weight": 1}, {"model": "big", "weight": 1}]}
    ruleset = rules(rule("ab", {}, {"route": {**split, "sticky": True}}))
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    to_big = sum(zlib.crc32(f"ab\x00{user}".encode()) / 0x1_0000_0000 >= 0.5 for user in users)
    assert 0 < to_big < len(users), "the sample should land on both sides"
    rows = [recorded(end_user=user, features={"model": "small", "user": user}) for user in users]
    report = replay(ruleset, [*rows, recorded()], CATALOG)
    # Users go whole to their side; the request without a user splits by the weights.
    assert mix(report.model_mix.after) == {
        "big": to_big + 0.5,
        "small": len(users) - to_big + 0.5,
    }


def test_a_public_model_with_several_deployments_is_priced_by_their_weights() -> None:
    report = replay(rules(rule("mix", {}, {"route": "mixed"})), [recorded()], CATALOG)
    assert mix(report.deployment_mix.after) == {"mock/mock-gpt": 0.75, "mock/mock-gpt-large": 0.25}
    expected = cost(SMALL) * Decimal("0.75") + cost(BIG) * Decimal("0.25")
    assert report.cost.after_usd == money(expected)


# --- what the record cannot tell ----------------------------------------------------------------


def test_header_and_budget_conditions_are_reported_as_unavailable() -> None:
    ruleset = rules(
        rule("by-tag", {"tags": "vip"}, {"tag": ["vip"]}, priority=1),
        rule("not-search", {"headers.x-team": {"ne": "search"}}, {"tag": ["h"]}, priority=2),
        rule("near-limit", {"budget.key_percent": {"gte": 90}}, {"deny": True}, priority=3),
    )
    report = replay(ruleset, [tagged("vip"), recorded(), recorded()], CATALOG)
    reports = by_rule(report)
    # An absent header passes `ne`: the rule matches, and the report says it could not know.
    assert (reports["not-search"].matched, reports["not-search"].unavailable) == (2, 3)
    assert reports["not-search"].unavailable_fields == {"headers.x-team": 3}
    assert reports["not-search"].shadowed == 1
    assert (reports["near-limit"].matched, reports["near-limit"].unavailable) == (0, 3)
    assert reports["by-tag"].unavailable == 0
    # Only rules the engine reached make a request uncertain: the two untagged ones.
    assert report.unavailable.requests == 2
    assert report.unavailable.fields == {"headers.x-team": 2}


def test_the_prompt_is_unavailable_only_when_content_was_not_stored() -> None:
    ruleset = rules(rule("refunds", {"prompt": {"regex": "refund"}}, {"route": "big"}))
    messages = [{"role": "user", "content": "I want a refund"}]
    rows = [
        recorded(prompt=messages),
        recorded(prompt=[{"role": "user", "content": "hello"}]),
        recorded(),
        recorded(route="/v1/embeddings", prompt="refund policy"),
    ]
    report = replay(ruleset, rows, CATALOG)
    refunds = by_rule(report)["refunds"]
    assert (refunds.matched, refunds.unavailable) == (1, 1)
    assert report.unavailable.requests == 1
    assert report.unavailable.fields == {"prompt": 1}
    assert reads_prompt(ruleset)
    assert not reads_prompt(rules(rule("t", {"tags": "a"}, {"tag": ["a"]})))


def test_fields_read_walks_every_combinator() -> None:
    when = {
        "all": [
            {"tags": "a"},
            {"any": [{"metadata.tier": "gold"}, {"not": {"headers.x-team": "ads"}}]},
        ],
        "time.hour": {"lt": 9},
    }
    assert fields_read(when) == {"tags", "metadata.tier", "headers.x-team", "time.hour"}
    assert fields_read(None) == set()


# --- per-rule counts ----------------------------------------------------------------------------


def test_shadowed_disabled_and_recorded_matches_are_counted() -> None:
    ruleset = rules(
        rule("first", {"tags": "a"}, {"tag": ["first"]}, priority=1),
        rule("second", {"tags": "a"}, {"tag": ["second"]}, priority=2),
        rule("off", {"tags": "a"}, {"route": "big"}, priority=3, enabled=False),
    )
    rows = [
        tagged("a", rules_matched=["second"]),
        tagged("a", rules_matched=["second", "gone"]),
        recorded(rules_matched=[]),
        recorded(),
    ]
    report = replay(ruleset, rows, CATALOG)
    reports = by_rule(report)
    assert (reports["first"].matched, reports["first"].matched_recorded) == (2, 0)
    assert (reports["second"].matched, reports["second"].condition_held) == (0, 2)
    assert (reports["second"].shadowed, reports["second"].matched_recorded) == (2, 2)
    assert (reports["off"].enabled, reports["off"].matched, reports["off"].shadowed) == (
        False,
        0,
        2,
    )
    assert reports["off"].routed == 0
    assert report.recorded_evaluations == 3
    assert report.changes == []


def test_time_fields_come_from_when_the_request_started() -> None:
    ruleset = rules(rule("mornings", {"time.hour": {"lt": 12}}, {"tag": ["am"]}))
    rows = [recorded(), recorded(started_at=STARTED + timedelta(hours=5))]
    assert by_rule(replay(ruleset, rows, CATALOG))["mornings"].matched == 1


def test_key_name_and_end_user_come_from_the_row() -> None:
    ruleset = rules(
        rule("batch", {"all": [{"key_name": "batch"}, {"user": "alice"}]}, {"tag": ["b"]})
    )
    rows = [recorded(end_user="alice"), recorded(end_user="bob"), recorded(key_name="other")]
    assert by_rule(replay(ruleset, rows, CATALOG))["batch"].matched == 1


def test_replaying_in_steps_reports_the_same_as_at_once() -> None:
    ruleset = rules(rule("premium", {"tags": "premium"}, {"route": "big"}))
    rows = [tagged("premium"), recorded(), tagged("premium", cost_usd=None)]
    replayer = Replayer(ruleset, CATALOG)
    for row in rows:
        replayer.add(row)
    assert replayer.report() == replay(ruleset, rows, CATALOG)


def test_money_is_exact_plain_text() -> None:
    assert money(Decimal("0.00000012")) == "0.00000012"
    assert money(Decimal("1E-7")) == "0.0000001"
    assert money(Decimal("0E-10")) == "0"
    assert money(Decimal("-0.5000")) == "-0.5"
    assert money(Decimal(1) / 3) == "0.3333333333"


# --- reading history from the database ---------------------------------------------------------


def bundle(
    started: float,
    *,
    route: str = "/v1/chat/completions",
    attempts: tuple[tuple[str, str, str], ...] = (("ok", "small", "mock-gpt"),),
    rules_matched: tuple[str, ...] | None = None,
    summary: dict[str, Any] | None = None,
    api_key_id: str | None = None,
    workspace_id: str = DEFAULT_WORKSPACE_ID,
    prompt: Any = None,
    requested_model: str | None = "small",
) -> TraceBundle:
    trace_id = uuid7_hex()
    interactions = [
        InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=workspace_id,
            provider="mock",
            requested_model=public,
            provider_model=provider_model,
            deployment=f"mock/{provider_model}",
            attempt=number,
            operation="embeddings" if route == "/v1/embeddings" else "chat",
            prompt_tokens=100 * number if status == "ok" else None,
            completion_tokens=10 * number if status == "ok" else None,
            cached_tokens=number if status == "ok" else None,
            cost_usd=Decimal(f"0.00{number}") if status == "ok" else None,
            started_at=started + number / 100,
            ended_at=started + number / 100 + 0.005,
            status=status,
            http_status=200 if status == "ok" else 502,
            prompt=prompt if status == "ok" else None,
        )
        for number, (status, public, provider_model) in enumerate(attempts, 1)
    ]
    decisions: list[DecisionRecord] = []
    if rules_matched is not None:
        outputs: list[tuple[str | None, dict[str, Any]]] = [(None, summary or {})]
        outputs += [(rule_id, {"tag": ["t"]}) for rule_id in rules_matched]
        decisions = [
            DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                sequence=sequence,
                type="rule_evaluation",
                component="rules",
                rule_id=rule_id,
                output=output,
                created_at=started,
            )
            for sequence, (rule_id, output) in enumerate(outputs)
        ]
    last = interactions[-1] if interactions else None
    return TraceBundle(
        trace=TraceRecord(
            trace_id=trace_id,
            workspace_id=workspace_id,
            api_key_id=api_key_id,
            request_id=trace_id,
            end_user="alice",
            route=route,
            started_at=started,
            ended_at=started + 0.1,
            requested_model=requested_model,
            provider=last.provider if last else None,
            provider_model=last.provider_model if last else None,
            tags=["t1"],
            metadata={"tier": "gold"},
            features={"model": "small", "estimated_input_tokens": 7},
        ),
        decisions=decisions,
        interactions=interactions,
    )


T0 = STARTED.timestamp()


async def test_history_joins_the_final_successful_interaction_and_the_recorded_rules(
    engine: AsyncEngine,
) -> None:
    key = await KeyStore(engine).create("batch jobs")
    retried = bundle(
        T0,
        attempts=(("error", "small", "mock-gpt"), ("ok", "big", "mock-gpt-large")),
        rules_matched=("premium", "tagger"),
        summary={"route": "big", "tags": ["t"]},
        api_key_id=key.info.key_id,
        prompt=[{"role": "user", "content": "hi"}],
    )
    denied = bundle(
        T0 + 1, attempts=(), rules_matched=("blocker",), summary={"deny": {"status": 403}}
    )
    embeddings = bundle(T0 + 2, route="/v1/embeddings", api_key_id="master")
    models_listing = bundle(T0 + 3, route="/v1/models", attempts=())
    unauthenticated = bundle(T0 + 4, attempts=(), requested_model=None)
    await BatchWriter(engine).write([retried, denied, embeddings, models_listing, unauthenticated])

    history = await replay_history(engine)
    assert not history.truncated
    rows = history.rows
    assert [row["trace_id"] for row in rows] == [
        embeddings.trace.trace_id,
        denied.trace.trace_id,
        retried.trace.trace_id,
    ]
    newest, blocked, first = rows
    assert first["started_at"] == STARTED
    assert (first["served_model"], first["served_provider_model"]) == ("big", "mock-gpt-large")
    assert (first["prompt_tokens"], first["completion_tokens"], first["cached_tokens"]) == (
        200,
        20,
        2,
    )
    assert first["cost_usd"] == Decimal("0.002")
    assert first["key_name"] == "batch jobs"
    assert (first["tags"], first["metadata"], first["end_user"]) == (
        ["t1"],
        {"tier": "gold"},
        "alice",
    )
    assert first["features"] == {"model": "small", "estimated_input_tokens": 7}
    assert first["rules_matched"] == ["premium", "tagger"]
    assert (first["rules_route"], first["rules_denied"]) == ("big", False)
    assert first["prompt"] is None, "prompts are read only when asked for"

    assert blocked["served_model"] is None and blocked["cost_usd"] is None
    assert (blocked["rules_matched"], blocked["rules_denied"]) == (["blocker"], True)
    assert newest["route"] == "/v1/embeddings"
    assert newest["rules_matched"] is None and newest["key_name"] is None

    with_prompts = await replay_history(engine, with_prompts=True)
    assert with_prompts.rows[2]["prompt"] == [{"role": "user", "content": "hi"}]


async def test_history_is_bounded_and_filtered_by_time_and_workspace(engine: AsyncEngine) -> None:
    bundles = [bundle(T0 + minute * 60) for minute in range(5)]
    other = bundle(T0 + 30, workspace_id="f" * 32)
    await BatchWriter(engine).write([*bundles, other])
    ids = [b.trace.trace_id for b in bundles]

    last_two = await replay_history(engine, limit=2)
    assert [row["trace_id"] for row in last_two.rows] == [ids[4], ids[3]]
    assert last_two.truncated

    window = await replay_history(
        engine, since=STARTED + timedelta(minutes=1), until=STARTED + timedelta(minutes=3)
    )
    assert [row["trace_id"] for row in window.rows] == [ids[3], ids[2], ids[1]]
    assert not window.truncated

    naive = await replay_history(engine, until=STARTED.replace(tzinfo=None))
    assert [row["trace_id"] for row in naive.rows] == [ids[0]]

    mine = await replay_history(engine, workspace_id=DEFAULT_WORKSPACE_ID)
    assert other.trace.trace_id not in {row["trace_id"] for row in mine.rows}
    assert len(mine.rows) == 5

    for bad in (0, REPLAY_MAX_REQUESTS + 1):
        with pytest.raises(ValueError):
            await replay_history(engine, limit=bad)


async def test_recorded_history_replays_end_to_end(engine: AsyncEngine) -> None:
    await BatchWriter(engine).write(
        [bundle(T0, rules_matched=()), bundle(T0 + 1, rules_matched=("x",))]
    )
    history = await replay_history(engine)
    ruleset = rules(rule("gold", {"metadata.tier": "gold"}, {"route": "big"}))
    report = replay(ruleset, history.rows, CATALOG)
    assert report.requests == 2
    assert report.recorded_evaluations == 2
    assert by_rule(report)["gold"].matched == 2
    assert mix(report.model_mix.after) == {"big": 2}
    expected_after = 2 * cost(BIG, 100, 10, 1)
    assert report.cost.after_usd == money(expected_after)
    assert report.cost.before_usd == "0.002"
