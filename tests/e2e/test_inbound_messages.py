"""Anthropic's Messages API on the gateway, with the official `anthropic` SDK, on SQLite and
Postgres: answered by an OpenAI-type and an Anthropic-type deployment of the mock provider."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.conftest import GatewayProcess, MockProcess
from tests.e2e.inbound_gateway import inbound_gateway_fixture
from tests.e2e.test_keys import create_key

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()
RULES = [
    {
        "id": "tag-messages",
        "continue": True,
        "when": {"operation": "messages"},
        "then": {"tag": "via-messages"},
    },
    {
        "id": "deny-closed",
        "when": {"operation": "messages", "tags": {"contains": "closed"}},
        "then": {"deny": {"status": 403, "message": "Messages are closed for this tag."}},
    },
    {"id": "guard-pii", "when": {"tags": "pii"}, "then": {"guardrails": ["pii-block"]}},
]


gateway = inbound_gateway_fixture(
    "messages",
    guardrails={"definitions": {"pii-block": {"kind": "pii", "action": "block"}}},
    rules=RULES,
)


def _client(gateway: GatewayProcess, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=key or gateway.master_key, max_retries=0
    )


def _bearer_client(gateway: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=None, auth_token=gateway.master_key, max_retries=0
    )


def _ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _interactions(gateway: GatewayProcess, trace_id: str) -> list[dict[str, Any]]:
    return gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )


def _trace(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    return gateway.database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)[0]


@pytest.mark.parametrize("model", ["mock-gpt", "sonnet"])
def test_a_message_is_answered_and_recorded_as_messages(
    gateway: GatewayProcess, model: str
) -> None:
    raw = _client(gateway).messages.with_raw_response.create(
        model=model, max_tokens=64, messages=_ask("hello from the messages api")
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    # A passed-through answer names the provider's model, as the provider wrote it.
    assert message.model == {"mock-gpt": "mock-gpt", "sonnet": "claude-sonnet-4-5-20250929"}[model]
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.content[0].type == "text"
    assert "hello" in message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    trace_id = raw.headers["x-steerway-trace-id"]
    (row,) = _interactions(gateway, trace_id)
    assert row["operation"] == "messages"
    assert row["completion_tokens"] == message.usage.output_tokens
    trace = _trace(gateway, trace_id)
    assert trace["route"] == "/v1/messages"
    assert trace["method"] == "POST"
    assert "via-messages" in (trace["tags"] or [])
    assert "tag-messages" in raw.headers["x-steerway-rules"]


@pytest.mark.parametrize("model", ["mock-gpt", "sonnet"])
def test_a_streamed_message_uses_anthropics_events(gateway: GatewayProcess, model: str) -> None:
    client = _client(gateway)
    whole = client.messages.create(model=model, max_tokens=32, messages=_ask("stream me please"))
    kinds: list[str] = []
    with client.messages.stream(
        model=model, max_tokens=32, messages=_ask("stream me please")
    ) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    assert kinds[-2:] == ["message_delta", "message_stop"] or kinds[-1] == "message_stop"
    assert final.content[0].type == "text"
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_raw_stream_has_ping_and_usage(gateway: GatewayProcess) -> None:
    body = {"model": "mock-gpt", "max_tokens": 16, "stream": True, "messages": _ask("hi")}
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"{gateway.url}/v1/messages",
            json=body,
            headers={"x-api-key": gateway.master_key or "", "anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[:2] == ["message_start", "ping"]
    assert events[-1] == "message_stop"
    assert '"output_tokens":' in response.text.split("event: message_delta")[1]


def test_system_stop_sequences_and_user_are_translated(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    user = "user-" + uuid.uuid4().hex[:8]
    raw = _client(gateway).messages.with_raw_response.create(
        model="mock-gpt",
        max_tokens=20,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        stop_sequences=["END"],
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 5},
        metadata={"user_id": user},
        messages=_ask("translate me"),
    )
    sent = mock_provider.last_request()["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief.\n\nBe kind."}
    assert sent["messages"][1] == {"role": "user", "content": "translate me"}
    assert sent["stop"] == ["END"]
    assert sent["temperature"] == 0.5 and sent["top_p"] == 0.9
    assert sent["max_tokens"] == 20
    assert "top_k" not in sent
    assert _trace(gateway, raw.headers["x-steerway-trace-id"])["end_user"] == user


def test_string_system_prompt(gateway: GatewayProcess, mock_provider: MockProcess) -> None:
    _client(gateway).messages.create(
        model="mock-gpt", max_tokens=8, system="You are terse.", messages=_ask("hi")
    )
    assert mock_provider.last_request()["body"]["messages"][0] == {
        "role": "system",
        "content": "You are terse.",
    }


@pytest.mark.parametrize("model", ["mock-gpt", "sonnet"])
def test_tools_are_called_and_their_results_go_back(gateway: GatewayProcess, model: str) -> None:
    client = _client(gateway)
    first = client.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=_ask("What is the weather in Paris?"),
    )
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert isinstance(call.input, dict) and isinstance(call.input.get("city"), str)
    second = client.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [call.model_dump()]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"},
                    {"type": "text", "text": "Summarise it."},
                ],
            },
        ],
        tool_choice={"type": "none"},
    )
    assert second.content[0].type == "text"


def test_a_tool_result_reaches_the_provider_as_a_tool_message(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    _client(gateway).messages.create(
        model="mock-gpt",
        max_tokens=16,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Rain"}],
            },
        ],
        tool_choice={"type": "none"},
    )
    sent = mock_provider.last_request()["body"]
    assistant, tool = sent["messages"][1], sent["messages"][2]
    assert assistant["content"] == "Let me look."
    assert assistant["tool_calls"][0]["id"] == "toolu_1"
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"city":"Oslo"}'
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "Rain"}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    assert sent["tool_choice"] == "none"


def test_a_streamed_tool_call_arrives_as_input_json(gateway: GatewayProcess) -> None:
    with _client(gateway).messages.stream(
        model="mock-gpt",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=_ask("weather in Rome?"),
    ) as stream:
        final = stream.get_final_message()
    (call,) = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input.get("city"), str)
    assert final.stop_reason == "tool_use"


def test_images_from_base64_and_url(gateway: GatewayProcess, mock_provider: MockProcess) -> None:
    _client(gateway).messages.create(
        model="mock-gpt",
        max_tokens=8,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.png"},
                    },
                    {"type": "text", "text": "what are these?"},
                ],
            }
        ],
    )
    parts = mock_provider.last_request()["body"]["messages"][0]["content"]
    assert parts[0] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
    }
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert parts[2] == {"type": "text", "text": "what are these?"}


def test_bearer_authentication_works_too(gateway: GatewayProcess) -> None:
    message = _bearer_client(gateway).messages.create(
        model="mock-gpt", max_tokens=8, messages=_ask("bearer")
    )
    assert message.content[0].type == "text"


def test_count_tokens_estimates_the_prompt(gateway: GatewayProcess) -> None:
    client = _client(gateway)
    short = client.messages.count_tokens(model="mock-gpt", messages=_ask("hi"))
    longer = client.messages.count_tokens(
        model="mock-gpt", system="A system prompt. " * 20, messages=_ask("hi " * 200)
    )
    assert short.input_tokens > 0
    assert longer.input_tokens > short.input_tokens + 150
    with pytest.raises(anthropic.AuthenticationError):
        _client(gateway, "sk-wrong").messages.count_tokens(model="mock-gpt", messages=_ask("x"))


def test_a_wrong_key_is_an_authentication_error(gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        _client(gateway, "sk-not-a-key").messages.create(
            model="mock-gpt", max_tokens=8, messages=_ask("hi")
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "mock-gpt", "max_tokens": 5, "messages": []}, "messages"),
        (
            {
                "model": "mock-gpt",
                "max_tokens": 5,
                "messages": [{"role": "system", "content": "x"}],
            },
            "role",
        ),
        (
            {
                "model": "mock-gpt",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "document"}]}],
            },
            "document",
        ),
        (
            {
                "model": "mock-gpt",
                "max_tokens": 5,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                "messages": [{"role": "user", "content": "x"}],
            },
            "server tools",
        ),
    ],
)
def test_a_bad_body_is_a_400_in_anthropics_shape(
    gateway: GatewayProcess, body: dict[str, Any], words: str
) -> None:
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": gateway.master_key or ""}
        )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert words in error["error"]["message"]


def test_not_json_is_a_400_and_unknown_model_a_404(gateway: GatewayProcess) -> None:
    with httpx.Client(timeout=30) as http:
        broken = http.post(
            f"{gateway.url}/v1/messages",
            content=b"{not json",
            headers={"x-api-key": gateway.master_key or "", "content-type": "application/json"},
        )
    assert broken.status_code == 400
    assert broken.json()["type"] == "error"
    with pytest.raises(anthropic.NotFoundError) as caught:
        _client(gateway).messages.create(model="no-such-model", max_tokens=8, messages=_ask("x"))
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_rules_match_on_the_operation(gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        _client(gateway).messages.create(
            model="mock-gpt",
            max_tokens=8,
            messages=_ask("hi"),
            extra_headers={"x-steerway-tags": "closed"},
        )
    assert "closed" in caught.value.message
    # The same tag on chat completions is not denied: the rule reads the operation.
    chat = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-steerway-tags": "closed"},
    )
    assert chat.status_code == 200
    assert "tag-messages" not in chat.headers.get("x-steerway-rules", "")


def test_guardrails_block_a_message(gateway: GatewayProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _client(gateway).messages.create(
            model="mock-gpt",
            max_tokens=8,
            messages=_ask("my email is jane.doe@example.com"),
            extra_headers={"x-steerway-tags": "pii"},
        )
    assert caught.value.response.headers["x-steerway-guardrails"] == "pii-block=blocked"
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"


def test_the_cache_answers_a_repeated_message(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    client = _client(gateway)
    question = _ask(f"cache me {uuid.uuid4().hex}")
    first = client.messages.with_raw_response.create(
        model="mock-gpt", max_tokens=16, extra_body={"temperature": 0}, messages=question
    )
    assert first.headers["x-steerway-cache"] == "MISS"
    time.sleep(0.3)  # a miss is stored after its answer went out
    before = mock_provider.stats()["requests_total"]
    second = client.messages.with_raw_response.create(
        model="mock-gpt", max_tokens=16, extra_body={"temperature": 0}, messages=question
    )
    assert second.headers["x-steerway-cache"] == "HIT"
    assert mock_provider.stats()["requests_total"] == before
    assert second.parse().content == first.parse().content
    with client.messages.stream(
        model="mock-gpt", max_tokens=16, extra_body={"temperature": 0}, messages=question
    ) as stream:
        replayed = stream.get_final_message()
    assert replayed.content[0].text == first.parse().content[0].text  # type: ignore[union-attr]
    (hit,) = _interactions(gateway, second.headers["x-steerway-trace-id"])
    assert hit["operation"] == "messages" and hit["cache_hit"] in (True, 1)


def test_rate_limits_answer_in_anthropics_shape(gateway: GatewayProcess) -> None:
    key = create_key(gateway, f"msg-rpm-{uuid.uuid4().hex[:6]}", "--rpm", "2")
    client = _client(gateway, key.plaintext)
    client.messages.create(model="mock-gpt", max_tokens=8, messages=_ask("one"))
    client.messages.create(model="mock-gpt", max_tokens=8, messages=_ask("two"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="mock-gpt", max_tokens=8, messages=_ask("three"))
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) >= 1
