"""A moderation guardrail whose model is a public chat model of the gateway, asked with a
rubric. The judge here is a small OpenAI-compatible chat server that reads the rubric's text
and answers JSON scores from the same word list as the mock provider's `/v1/moderations`
(or prose, when the text asks it to, to show a judge that does not answer JSON)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import openai
import pytest
from aiohttp import web

from gateway.guardrails.moderation_model import fold_scores
from providers.mock.moderations import score_text
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.threaded_server import ThreadedServer

PROSE = "[[judge-prose]]"


class RubricJudge(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[dict[str, Any]] = []

    def route(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read())
        self.asked.append(body)
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        assert "content moderation classifier" in system
        if PROSE in user:
            content = "This text seems fine to me."
        else:
            content = json.dumps({"scores": fold_scores(score_text(user))})
        answer = {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        }
        return web.json_response(answer)


@pytest.fixture(scope="module")
def judge() -> Iterator[RubricJudge]:
    with RubricJudge() as server:
        yield server


@pytest.fixture(scope="module")
def judged(
    backend_database: Database,
    mock_provider: MockProcess,
    judge: RubricJudge,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(
        mock_provider,
        guardrails={
            "default": ["rubric"],
            "definitions": {
                "rubric": {
                    "kind": "moderation",
                    "judge_model": "moderator",
                    "action": "block",
                    "categories": ["harassment", "violence"],
                    "thresholds": {"violence": 0.9},
                }
            },
        },
    )
    config["providers"]["judge"] = {"type": "openai", "base_url": f"{judge.url}/v1"}
    config["models"]["moderator"] = [{"provider": "judge", "model": "rubric-judge-1"}]
    config["prices"] = {"rubric-judge-1": {"input_per_million": 1.0, "output_per_million": 2.0}}
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("judged"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _ask(gateway: GatewayProcess, text: str) -> Any:
    return gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": text}]
    )


def test_the_judge_blocks_by_its_scores(judged: GatewayProcess, judge: RubricJudge) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(judged, "you idiot")
    assert "harassment (1)" in caught.value.message
    asked = judge.asked[-1]
    assert asked["model"] == "rubric-judge-1"
    assert asked["messages"][1]["content"] == "you idiot"
    assert "harassment, violence" in asked["messages"][0]["content"]
    trace_id = caught.value.response.headers["x-steerway-trace-id"]
    span = judged.database.wait_rows(
        "SELECT * FROM spans WHERE trace_id = :t AND name = 'guardrails.moderation'",
        1,
        t=trace_id,
    )[0]
    attributes = span["attributes"]
    attributes = json.loads(attributes) if isinstance(attributes, str) else attributes
    assert attributes["moderation.model"] == "judge:moderator"
    assert attributes["gen_ai.usage.input_tokens"] == 50  # what the judge reported
    assert attributes["gen_ai.usage.output_tokens"] == 20
    assert Decimal(attributes["cost_usd"]) == Decimal("0.00009")  # 50 at $1/M + 20 at $2/M


def test_a_category_threshold_applies_to_the_judge(judged: GatewayProcess) -> None:
    raw = _ask(judged, "kill the lights")  # violence 0.86, under this guardrail's 0.9
    assert raw.headers["x-steerway-guardrails"] == "rubric=pass"


def test_a_judge_that_does_not_answer_json_fails_closed(judged: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _ask(judged, f"hello {PROSE}")
    assert caught.value.status_code == 503
    assert caught.value.code == "guardrail_unavailable"
    trace_id = caught.value.response.headers["x-steerway-trace-id"]
    decision = judged.database.wait_rows(
        "SELECT * FROM decisions WHERE trace_id = :t AND type = 'guardrail'", 1, t=trace_id
    )[0]
    assert "did not answer JSON" in decision["reasoning"]


def test_the_judges_calls_are_a_trace_of_their_own_left_out_of_usage(
    judged: GatewayProcess,
) -> None:
    """Each moderation-judge call is an interaction (`purpose = moderation`) of a trace with
    `source = moderation` in the request's workspace, priced as on the span; the usage roll-ups
    and the traces list leave it out."""
    raw = _ask(judged, "hello there, how are you")
    request_trace = raw.headers["x-steerway-trace-id"]
    [trace] = judged.database.wait_rows(
        "SELECT * FROM traces WHERE request_id = :r", 1, r=f"moderation-{request_trace}"
    )
    assert (trace["source"], trace["route"], trace["status"]) == ("moderation", "moderation", "ok")
    [own] = judged.database.rows(
        "SELECT workspace_id FROM traces WHERE trace_id = :t", t=request_trace
    )
    assert trace["workspace_id"] == own["workspace_id"]
    [call] = judged.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", 1, t=trace["trace_id"]
    )
    assert (call["purpose"], call["requested_model"], call["provider_model"]) == (
        "moderation",
        "moderator",
        "rubric-judge-1",
    )
    assert (call["prompt_tokens"], call["completion_tokens"]) == (50, 20)
    assert call["prompt"] is None and call["response"] is None  # the texts are never kept
    # Once the request's own trace is rolled up, the moderation trace is not.
    judged.database.wait_rows(
        "SELECT * FROM usage_rollups WHERE model = 'mock-gpt' AND source = 'proxy'", 1
    )
    assert judged.database.rows("SELECT * FROM usage_rollups WHERE model = 'moderator'") == []
    with judged.http() as http:
        found = http.get("/admin/api/traces", params={"request_id": trace["request_id"]})
        asked = http.get(
            "/admin/api/traces",
            params={"request_id": trace["request_id"], "source": "moderation"},
        )
    assert found.status_code == 200 and found.json()["data"] == []
    assert [t["trace_id"] for t in asked.json()["data"]] == [trace["trace_id"]]
