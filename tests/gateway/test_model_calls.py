"""The judge's model calls outside the proxy: through a provider adapter (the mock provider as
a real server) and through google-genai (the fake Gemini); priced, recorded as an evaluation
trace, and never leaking the provider's key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest

from gateway.config.file import parse_config
from gateway.upstream.model_calls import ModelCaller, gemini_http_options
from providers.mock_server import MockServer, MockSettings, start_mock_server
from providers.upstream import UpstreamClient
from server.app import provider_adapters
from telemetry.evaluation.definition import parse_definition
from telemetry.evaluation.judge import JudgeCallFailed, JudgeRequest
from telemetry.evaluation.parsing import parse_verdict
from telemetry.evaluation.prompt import build_messages, response_schema
from telemetry.records import TraceBundle
from tests.fake_gemini import FakeGemini
from tests.telemetry.evaluation.helpers import ANSWER, PROMPT, judge_config

DEFINITION = parse_definition(
    {"judge": "judge", "criteria": ["accuracy", "tone"]}, models=["judge"]
)


def judge_request(model: str = "judge", timeout_s: float = 10.0) -> JudgeRequest:
    return JudgeRequest(
        workspace_id="ws1",
        model=model,
        messages=build_messages(PROMPT, ANSWER, DEFINITION.criteria),
        schema=response_schema(DEFINITION.criteria),
        temperature=0.0,
        timeout_s=timeout_s,
    )


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-secret-1") as server:
        yield server


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    server = await start_mock_server(MockSettings())
    yield server
    await server.close()


async def test_a_judge_behind_an_openai_provider_answers_its_schema(mock: MockServer) -> None:
    config = parse_config(
        {
            "providers": {"mock": {"type": "openai", "base_url": mock.base_url, "api_key": "sk-m"}},
            "models": {"judge": [{"provider": "mock", "model": "gpt-4o-mini"}]},
        }
    )
    upstream = UpstreamClient()
    await upstream.start()
    recorded: list[TraceBundle] = []
    try:
        caller = ModelCaller(config, provider_adapters(config, upstream), recorded.append)
        answer = await caller.judge(judge_request())
    finally:
        await upstream.close()
    sent = mock.last_request
    assert sent is not None
    body = sent["body"]
    assert body["response_format"]["type"] == "json_schema"
    scores = body["response_format"]["json_schema"]["schema"]["properties"]["scores"]
    assert list(scores["properties"]) == ["accuracy", "tone"]
    # The mock answers the smallest object the schema allows: every score its minimum.
    verdict = parse_verdict(answer.text, DEFINITION.criteria)
    assert verdict.scores == {"accuracy": 0.0, "tone": 0.0}
    assert answer.prompt_tokens and answer.completion_tokens
    assert answer.cost_usd is not None and answer.cost_usd > 0
    [bundle] = recorded
    assert bundle.trace.source == "evaluation"
    assert bundle.trace.trace_id == answer.trace_id
    assert [i.purpose for i in bundle.interactions] == ["evaluation"]
    assert bundle.interactions[0].cost_usd == answer.cost_usd


async def test_a_gemini_judge_goes_through_google_genai(gemini: FakeGemini) -> None:
    recorded: list[TraceBundle] = []
    caller = ModelCaller(judge_config(gemini), {}, recorded.append)
    try:
        gemini.then_scores({"accuracy": 95, "tone": 85})
        answer = await caller.judge(judge_request())
        assert parse_verdict(answer.text, DEFINITION.criteria).scores == {
            "accuracy": 95.0,
            "tone": 85.0,
        }
        [sent] = gemini.received
        assert sent.api_key == "gk-secret-1"
        assert sent.body["generationConfig"]["responseMimeType"] == "application/json"
        assert "systemInstruction" in sent.body
        gemini.then_refusal()
        refused = await caller.judge(judge_request())
        assert refused.refused and refused.text is None
    finally:
        await caller.close()
    assert [b.trace.status for b in recorded] == ["ok", "ok"]


async def test_a_failed_call_names_the_provider_not_the_key(gemini: FakeGemini) -> None:
    recorded: list[TraceBundle] = []
    caller = ModelCaller(judge_config(gemini), {}, recorded.append)
    gemini.then_status(503)
    try:
        with pytest.raises(JudgeCallFailed) as failed:
            await caller.judge(judge_request())
    finally:
        await caller.close()
    assert str(failed.value) == "google: HTTP 503"
    assert failed.value.trace_id == recorded[0].trace.trace_id
    assert recorded[0].trace.status == "error"
    assert "gk-secret-1" not in msgspec.json.encode(recorded).decode()


async def test_an_unknown_judge_model_fails_without_a_call(gemini: FakeGemini) -> None:
    caller = ModelCaller(judge_config(gemini), {}, lambda bundle: True)
    with pytest.raises(JudgeCallFailed, match="no public model"):
        await caller.judge(judge_request(model="nope"))
    assert gemini.received == []


def test_the_gemini_base_url_is_split_into_root_and_version(gemini: FakeGemini) -> None:
    config = judge_config(gemini)
    options = gemini_http_options(config.provider("google"), 5.0)
    assert options.base_url == f"{gemini.url}/"
    assert options.api_version == "v1beta"
    assert options.timeout == 5000
