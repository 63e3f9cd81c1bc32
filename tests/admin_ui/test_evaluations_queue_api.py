"""`POST /admin/api/evaluations/queue` against a running gateway on SQLite and Postgres: one
trace queued and queued again, a set's estimate checked against the judge's configured price
and then confirmed, answers without content skipped, roles and workspaces kept apart, and every
bad body a 400 naming its field."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from telemetry.evaluation.on_demand_cost import answer_tokens, rubric_tokens, tokens_of
from tests.admin_ui.conftest import error_of, workspace_keys
from tests.admin_ui.evaluation_seed import evaluator, execute, stored
from tests.console_users import create_user, sign_in
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    backend_database,
    mock_config,
    mock_provider,
)
from tests.telemetry.evaluation.on_demand_rows import answered

__all__ = ["backend_database", "mock_provider"]

QUEUE = "/admin/api/evaluations/queue"
JUDGE_PRICE = {"input_per_million": "0.40", "output_per_million": "1.60"}
CRITERIA = [{"name": "accuracy"}, {"name": "brevity", "rubric": "One sentence is enough."}]


@pytest.fixture(scope="module")
def judged_gateway(
    backend_database: Database, mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The mock provider's models plus `judge`, priced by the config's `prices`."""
    config = mock_config(mock_provider, prices={"mock-judge": JUDGE_PRICE})
    config["models"]["judge"] = [{"provider": "mock", "model": "mock-judge"}]
    # The queue is looked at as queued: no judge of this gateway takes its rows meanwhile.
    config["evaluation"] = {"run_in_serve": False}
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("evaluations"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def workspace_id_of(gateway: GatewayProcess, slug: str) -> str:
    (row,) = gateway.database.rows("SELECT workspace_id FROM workspaces WHERE slug = :s", s=slug)
    return str(row["workspace_id"])


def queue_rows(gateway: GatewayProcess, evaluator_id: str) -> list[dict[str, Any]]:
    return gateway.database.rows(
        "SELECT * FROM evaluation_queue WHERE evaluator_id = :e ORDER BY trace_id", e=evaluator_id
    )


def test_one_trace_is_queued_and_asking_again_re_evaluates_it(
    judged_gateway: GatewayProcess,
) -> None:
    slug, admin_key, user_key = workspace_keys(judged_gateway, "single")
    workspace = workspace_id_of(judged_gateway, slug)
    evaluator_id = evaluator(judged_gateway.database.url, workspace, "accuracy", criteria=CRITERIA)
    raw = judged_gateway.client(user_key).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": "Name a prime number."}]
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    judged_gateway.database.wait_rows(
        "SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )

    with judged_gateway.http(admin_key) as http:
        first = http.post(QUEUE, json={"evaluator_id": evaluator_id, "trace_id": trace_id})
        assert first.status_code == 202, first.text
        body = first.json()
        assert body["queued"] == {"queued": 1, "already_running": 0, "skipped_no_content": 0}
        assert (body["traces"], body["interactions"], body["with_content"]) == (1, 1, 1)
        assert body["evaluator"]["name"] == "accuracy"
        (row,) = queue_rows(judged_gateway, evaluator_id)
        assert (row["trace_id"], row["reason"], row["status"]) == (trace_id, "on_demand", "pending")

        execute(
            judged_gateway.database.url,
            "UPDATE evaluation_queue SET status = 'done', attempts = 2 WHERE queue_id = :q",
            q=row["queue_id"],
        )
        again = http.post(QUEUE, json={"evaluator_id": evaluator_id, "trace_id": trace_id})
        assert again.status_code == 202, again.text
        (reset,) = queue_rows(judged_gateway, evaluator_id)
        assert (reset["queue_id"], reset["status"], reset["attempts"]) == (
            row["queue_id"],
            "pending",
            0,
        )
    audit = judged_gateway.database.rows(
        "SELECT * FROM audit_log WHERE action = 'evaluation.queue' AND target_id = :e",
        e=evaluator_id,
    )
    assert len(audit) == 2


def test_a_set_answers_its_estimate_at_the_judges_price_and_queues_only_when_confirmed(
    judged_gateway: GatewayProcess,
) -> None:
    slug, admin_key, _ = workspace_keys(judged_gateway, "batch")
    workspace = workspace_id_of(judged_gateway, slug)
    url = judged_gateway.database.url
    evaluator_id = evaluator(url, workspace, "accuracy", criteria=CRITERIA)
    wanted = [answered(workspace, model="mock-gpt") for _ in range(3)]
    bare = answered(workspace, model="mock-gpt", stored=False)
    other = answered(workspace, model="large")
    stored(url, *wanted, bare, other)
    asked = {"evaluator_id": evaluator_id, "filter": {"model": "mock-gpt", "last": "1h"}}

    with judged_gateway.http(admin_key) as http:
        estimate = http.post(QUEUE, json=asked)
        assert estimate.status_code == 200, estimate.text
        body = estimate.json()
        assert queue_rows(judged_gateway, evaluator_id) == []
        assert (body["traces"], body["more_traces"], body["traces_limit"]) == (4, False, 1000)
        assert (body["interactions"], body["with_content"], body["skipped_no_content"]) == (4, 3, 1)
        assert body["queued"] is None

        lengths = judged_gateway.database.rows(
            "SELECT length(CAST(prompt AS TEXT)) + length(CAST(response AS TEXT)) AS n "
            "FROM ai_interactions WHERE workspace_id = :w AND prompt IS NOT NULL "
            "AND requested_model = 'mock-gpt'",
            w=workspace,
        )
        definition = {"criteria": CRITERIA}
        prompt_tokens = sum(tokens_of(r["n"]) for r in lengths) + 3 * rubric_tokens(definition)
        completion_tokens = 3 * answer_tokens(definition)
        cost = (prompt_tokens * Decimal("0.40") + completion_tokens * Decimal("1.60")) / 10**6
        assert body["estimate"]["prompt_tokens"] == prompt_tokens
        assert body["estimate"]["completion_tokens"] == completion_tokens
        assert Decimal(body["estimate"]["cost_usd"]) == cost
        assert body["estimate"]["price_known"] is True

        confirmed = http.post(QUEUE, json={**asked, "confirm": True})
        assert confirmed.status_code == 202, confirmed.text
        assert confirmed.json()["queued"] == {
            "queued": 3,
            "already_running": 0,
            "skipped_no_content": 1,
        }
    rows = queue_rows(judged_gateway, evaluator_id)
    assert sorted(r["trace_id"] for r in rows) == sorted(b.trace.trace_id for b in wanted)
    assert {(r["workspace_id"], r["reason"], r["status"]) for r in rows} == {
        (workspace, "on_demand", "pending")
    }


def test_a_judge_without_a_price_gives_tokens_and_no_cost(judged_gateway: GatewayProcess) -> None:
    slug, admin_key, _ = workspace_keys(judged_gateway, "unpriced")
    workspace = workspace_id_of(judged_gateway, slug)
    url = judged_gateway.database.url
    evaluator_id = evaluator(url, workspace, "cheap", judge="unpriced")
    stored(url, answered(workspace))
    with judged_gateway.http(admin_key) as http:
        body = http.post(QUEUE, json={"evaluator_id": evaluator_id, "filter": {}}).json()
    assert body["with_content"] == 1
    assert body["estimate"]["cost_usd"] is None and body["estimate"]["price_known"] is False
    assert body["estimate"]["prompt_tokens"] > 0


def test_workspaces_and_roles_are_kept_apart(judged_gateway: GatewayProcess) -> None:
    url = judged_gateway.database.url
    slug_a, admin_a, _ = workspace_keys(judged_gateway, "team-a")
    slug_b, admin_b, _ = workspace_keys(judged_gateway, "team-b")
    workspace_a = workspace_id_of(judged_gateway, slug_a)
    workspace_b = workspace_id_of(judged_gateway, slug_b)
    evaluator_a = evaluator(url, workspace_a, "accuracy")
    evaluator_b = evaluator(url, workspace_b, "accuracy")
    trace_b = answered(workspace_b)
    stored(url, trace_b)

    with judged_gateway.http(admin_b) as http:
        other = http.post(QUEUE, json={"evaluator_id": evaluator_a, "filter": {}})
        assert error_of(other, 404)["code"] == "evaluator_not_found"
    with judged_gateway.http(admin_a) as http:
        foreign = http.post(
            QUEUE, json={"evaluator_id": evaluator_a, "trace_id": trace_b.trace.trace_id}
        )
        assert error_of(foreign, 404)["code"] == "trace_not_found"
        named = http.post(
            QUEUE, json={"evaluator_id": evaluator_a, "filter": {"workspace": slug_b}}
        )
        assert error_of(named, 404)["param"] == "workspace"
    with judged_gateway.http() as http:  # the master key reads both, but a set stays in one
        mixed = http.post(
            QUEUE, json={"evaluator_id": evaluator_a, "filter": {"workspace": slug_b}}
        )
        assert error_of(mixed, 400)["param"] == "workspace"
        own = http.post(QUEUE, json={"evaluator_id": evaluator_b, "filter": {}}).json()
        assert own["with_content"] == 1

    viewer = create_user(url, role="viewer", workspace=slug_b)
    with sign_in(judged_gateway.url, viewer).client() as http:
        refused = http.post(QUEUE, json={"evaluator_id": evaluator_b, "filter": {}})
        assert error_of(refused, 403)["code"] == "permission_denied"
    editor = create_user(url, role="admin", workspace=slug_b)
    with sign_in(judged_gateway.url, editor).client() as http:
        allowed = http.post(
            QUEUE,
            json={"evaluator_id": evaluator_b, "trace_id": trace_b.trace.trace_id},
        )
        assert allowed.status_code == 202, allowed.text
    assert [r["workspace_id"] for r in queue_rows(judged_gateway, evaluator_b)] == [workspace_b]
    assert queue_rows(judged_gateway, evaluator_a) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "evaluator_id"),
        ({"evaluator_id": "nope", "filter": {}}, "evaluator_id"),
        ({"evaluator_id": "ID", "trace_id": "t", "filter": {}}, "trace_id"),
        ({"evaluator_id": "ID"}, "trace_id"),
        ({"evaluator_id": "ID", "filter": {}, "confirm": "yes"}, "confirm"),
        ({"evaluator_id": "ID", "trace_id": "t", "confirm": True}, "confirm"),
        ({"evaluator_id": "ID", "filter": []}, "filter"),
        ({"evaluator_id": "ID", "filter": {"colour": "red"}}, "colour"),
        ({"evaluator_id": "ID", "filter": {"status": "sideways"}}, "status"),
        ({"evaluator_id": "ID", "filter": {"cursor": "abc"}}, "cursor"),
        ({"evaluator_id": "ID", "filter": {"model": {"a": 1}}}, "filter.model"),
        ({"evaluator_id": "ID", "filter": {}, "sampling": 1}, "sampling"),
        ({"evaluator_id": "ID", "filter": {"model": "a\u0000b"}}, "filter.model"),
        ({"evaluator_id": "ID", "trace_id": "\u0000"}, "trace_id"),
    ],
)
def test_a_bad_body_is_a_400_naming_its_field(
    judged_gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    evaluator_id = evaluator(
        judged_gateway.database.url,
        "00000000000000000000000000000000",
        f"checks-{secrets.token_hex(4)}",
    )
    sent = {k: evaluator_id if v == "ID" else v for k, v in body.items()}
    with judged_gateway.http() as http:
        assert error_of(http.post(QUEUE, json=sent), 400)["param"] == param
