"""OpenAI's Responses API on the gateway with the official `openai` SDK, on SQLite and Postgres:
translated to chat for the mock provider, stored per workspace, continued, retrieved, deleted,
and run through the same rules, cache, limits and guardrails as chat."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Database, GatewayProcess, MockProcess
from tests.e2e.inbound_gateway import inbound_gateway_fixture
from tests.e2e.test_keys import create_key

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PIXEL = "data:image/png;base64," + base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()
RULES = [
    {
        "id": "tag-responses",
        "continue": True,
        "when": {"operation": "responses"},
        "then": {"tag": "via-responses"},
    },
    {
        "id": "deny-closed",
        "when": {"operation": "responses", "tags": {"contains": "closed"}},
        "then": {"deny": {"status": 403, "message": "Responses are closed for this tag."}},
    },
    {"id": "guard-words", "when": {"tags": "guarded"}, "then": {"guardrails": ["no-falcon"]}},
]


gateway = inbound_gateway_fixture(
    "responses",
    guardrails={
        "definitions": {
            "no-falcon": {"kind": "deny_list", "words": ["project falcon"], "action": "block"}
        }
    },
    rules=RULES,
)


def _interaction(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    (row,) = gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    return row


def _trace(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    return gateway.database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)[0]


def _sent(mock: MockProcess) -> dict[str, Any]:
    body: dict[str, Any] = mock.last_request()["body"]
    return body


def test_a_response_is_answered_stored_and_recorded(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    raw = gateway.client().responses.with_raw_response.create(
        model="mock-gpt",
        input="hello there",
        instructions="Be brief.",
        max_output_tokens=64,
        metadata={"ticket": "t-1"},
        user="end-user-1",
    )
    response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.object == "response" and response.status == "completed"
    assert response.model == "mock-gpt"
    assert "hello there" in response.output_text
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.instructions == "Be brief." and response.metadata == {"ticket": "t-1"}
    sent = _sent(mock_provider)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_completion_tokens"] == 64 and sent["user"] == "end-user-1"
    assert "input" not in sent and "metadata" not in sent

    trace_id = raw.headers["x-steerway-trace-id"]
    row = _interaction(gateway, trace_id)
    assert row["operation"] == "responses"
    assert row["completion_tokens"] == response.usage.output_tokens
    trace = _trace(gateway, trace_id)
    assert trace["route"] == "/v1/responses" and trace["method"] == "POST"
    assert trace["end_user"] == "end-user-1"
    assert "via-responses" in (trace["tags"] or [])
    assert "tag-responses" in raw.headers["x-steerway-rules"]

    again = gateway.client().responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == response.output_text
    assert again.usage is not None and again.usage.total_tokens == response.usage.total_tokens
    (stored,) = gateway.database.wait_rows(
        "SELECT * FROM stored_responses WHERE response_id = :r", r=response.id
    )
    assert stored["model"] == "mock-gpt" and stored["workspace_id"]
    assert stored["expires_at"] > stored["created_at"]


def test_a_streamed_response_uses_the_typed_events(gateway: GatewayProcess) -> None:
    client = gateway.client()
    whole = client.responses.create(model="mock-gpt", input="stream me please")
    events = list(client.responses.create(model="mock-gpt", input="stream me please", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "response.output_text.delta" in kinds
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert deltas == whole.output_text == final.output_text
    assert final.usage is not None and final.usage.output_tokens == whole.usage.output_tokens  # type: ignore[union-attr]
    assert final.id.startswith("resp_") and final.id != whole.id
    # A streamed response is stored too, once its stream is complete.
    assert client.responses.retrieve(final.id).output_text == deltas


def test_previous_response_id_continues_the_conversation(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    client = gateway.client()
    first = client.responses.create(
        model="mock-gpt", input="my name is Ada", instructions="Remember names."
    )
    second = client.responses.create(
        model="mock-gpt", input="what is my name", previous_response_id=first.id
    )
    assert _sent(mock_provider)["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "what is my name"},
    ]
    assert second.previous_response_id == first.id
    streamed = list(
        client.responses.create(
            model="mock-gpt", input="and again", previous_response_id=second.id, stream=True
        )
    )
    assert [m["content"] for m in _sent(mock_provider)["messages"]] == [
        "my name is Ada",
        first.output_text,
        "what is my name",
        second.output_text,
        "and again",
    ]
    third = streamed[-1].response  # type: ignore[union-attr]
    client.responses.create(model="mock-gpt", input="last", previous_response_id=third.id)
    assert len(_sent(mock_provider)["messages"]) == 7


def test_store_false_keeps_nothing(gateway: GatewayProcess) -> None:
    client = gateway.client()
    response = client.responses.create(model="mock-gpt", input="forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve(response.id)
    assert response.id in missing.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="mock-gpt", input="x", previous_response_id=response.id)
    assert unknown.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert unknown.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert not gateway.database.rows(
        "SELECT 1 FROM stored_responses WHERE response_id = :r", r=response.id
    )


def test_delete_removes_a_response(gateway: GatewayProcess) -> None:
    client = gateway.client()
    response = client.responses.create(model="mock-gpt", input="delete me")
    with gateway.http() as http:
        deleted = http.delete(f"/v1/responses/{response.id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": response.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    kept = client.responses.create(model="mock-gpt", input="delete me too")
    client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(kept.id)
    traces = gateway.database.wait_rows(
        "SELECT method, route, http_status FROM traces WHERE route = '/v1/responses/{id}'"
        " AND method = 'DELETE'"
    )
    assert {row["http_status"] for row in traces} >= {200, 404}


def test_another_workspace_sees_nothing(gateway: GatewayProcess) -> None:
    owner = create_key(gateway, f"ws-a-{uuid.uuid4().hex[:6]}", "--workspace", "resp-a")
    other = create_key(gateway, f"ws-b-{uuid.uuid4().hex[:6]}", "--workspace", "resp-b")
    mine = gateway.client(owner.plaintext).responses.create(model="mock-gpt", input="secret")
    theirs = gateway.client(other.plaintext)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.create(model="mock-gpt", input="x", previous_response_id=mine.id)
    assert gateway.client(owner.plaintext).responses.retrieve(mine.id).output_text


def test_function_tools_calls_and_their_outputs(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    client = gateway.client()
    called = client.responses.create(
        model="mock-gpt", input="weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    (call,) = called.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
    sent = _sent(mock_provider)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER.items() if k != "type"},
        }
    ]
    assert sent["tool_choice"] == "required"
    client.responses.create(
        model="mock-gpt",
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
        tool_choice="none",
    )
    messages = _sent(mock_provider)["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}

    events = list(
        client.responses.create(
            model="mock-gpt", input="weather?", tools=[WEATHER], tool_choice="auto", stream=True
        )
    )
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].type == "function_call"
    assert final.output[0].arguments == done.arguments  # type: ignore[union-attr]


def test_images_and_structured_output(gateway: GatewayProcess, mock_provider: MockProcess) -> None:
    client = gateway.client()
    client.responses.create(
        model="mock-gpt",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": PIXEL, "detail": "low"},
                ],
            }
        ],
    )
    (message,) = _sent(mock_provider)["messages"]
    assert message["content"][1] == {
        "type": "image_url",
        "image_url": {"url": PIXEL, "detail": "low"},
    }
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    shaped = client.responses.create(
        model="mock-gpt",
        input="answer in json",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
    )
    assert "answer" in json.loads(shaped.output_text)
    assert _sent(mock_provider)["response_format"]["json_schema"]["name"] == "reply"


def test_a_reply_cut_by_max_output_tokens_is_incomplete(gateway: GatewayProcess) -> None:
    response = gateway.client().responses.create(
        model="mock-gpt", input="a long answer please", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "mock-gpt", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"model": "mock-gpt", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "mock-gpt", "input": "x", "background": True}, "background"),
        ({"model": "mock-gpt", "input": "x", "max_output_tokens": -1}, "max_output_tokens"),
        ({"model": "mock-gpt", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ],
)
def test_bad_requests_are_400s_in_openais_shape(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    with gateway.http() as http:
        answer = http.post("/v1/responses", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_unknown_model_json_body_and_methods(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        gateway.client().responses.create(model="no-such-model", input="x")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with gateway.http() as http:
        broken = http.post("/v1/responses", content=b"{not json")
        assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
        assert http.put("/v1/responses/resp_x").status_code == 405
        assert http.get("/v1/responses").status_code == 405
        assert http.get("/v1/responses/resp_nope").json()["error"]["message"] == (
            "Response with id 'resp_nope' not found."
        )
    with httpx.Client(timeout=10) as anonymous:
        refused = anonymous.get(f"{gateway.base_url}/responses/resp_x")
    assert refused.status_code == 401


def test_rules_cache_limits_and_guardrails_apply(gateway: GatewayProcess) -> None:
    client = gateway.client()
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.responses.create(
            model="mock-gpt", input="x", extra_headers={"x-steerway-tags": "closed"}
        )
    assert denied.value.body["message"] == "Responses are closed for this tag."  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as blocked:
        client.responses.create(
            model="mock-gpt",
            input="tell me about project falcon",
            extra_headers={"x-steerway-tags": "guarded"},
        )
    assert blocked.value.body["code"] == "guardrail_violation"  # type: ignore[index]

    question = f"cached question {uuid.uuid4().hex[:8]}"
    first = client.responses.with_raw_response.create(
        model="mock-gpt", input=question, temperature=0
    )
    second = client.responses.with_raw_response.create(
        model="mock-gpt", input=question, temperature=0
    )
    assert first.headers["x-steerway-cache"] == "MISS"
    assert second.headers["x-steerway-cache"] == "HIT"
    hit = second.parse()
    assert hit.output_text == first.parse().output_text and hit.id != first.parse().id
    assert client.responses.retrieve(hit.id).output_text == hit.output_text
    row = _interaction(gateway, second.headers["x-steerway-trace-id"])
    assert row["cache_hit"] and row["operation"] == "responses"
    with client.responses.with_streaming_response.create(
        model="mock-gpt", input=question, temperature=0, stream=True
    ) as replayed:
        assert replayed.headers["x-steerway-cache"] == "HIT"
        events = list(replayed.parse())
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == hit.output_text  # type: ignore[union-attr]

    limited = create_key(gateway, f"rpm-{uuid.uuid4().hex[:6]}", "--rpm", "1")
    limited_client = gateway.client(limited.plaintext)
    limited_client.responses.create(model="mock-gpt", input="one")
    with pytest.raises(openai.RateLimitError) as limit:
        limited_client.responses.create(model="mock-gpt", input="two")
    assert limit.value.response.headers["x-ratelimit-limit-requests"] == "1"


def test_a_stream_broken_upstream_ends_with_an_error_event(gateway: GatewayProcess) -> None:
    events = list(
        gateway.client().responses.create(
            model="mock-gpt",
            input="break this stream",
            stream=True,
            extra_body={"mock": {"drop_after_chunks": 2, "chunks": 6}},
        )
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-1] == "error" and "response.completed" not in kinds
    assert events[-1].code == "upstream_error"  # type: ignore[union-attr]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    created = events[0].response  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        gateway.client().responses.retrieve(created.id)


def test_a_get_right_after_a_post_finds_it_on_any_worker(
    backend_database: Database, mock_provider: MockProcess, start_gateway: Any
) -> None:
    config = {
        "providers": {"mock": {"type": "openai", "base_url": mock_provider.base_url}},
        "models": {"mock-gpt": [{"provider": "mock", "model": "mock-gpt"}]},
    }
    key = "sk-master-" + secrets.token_hex(8)
    two = start_gateway(backend_database, config, master_key=key, workers=2)
    headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
    with httpx.Client(base_url=two.base_url, timeout=30) as http:
        for turn in range(8):
            made = http.post(
                "/responses", json={"model": "mock-gpt", "input": f"turn {turn}"}, headers=headers
            )
            assert made.status_code == 200, made.text
            found = http.get(f"/responses/{made.json()['id']}", headers=headers)
            assert found.status_code == 200, found.text
            assert found.json()["output"] == made.json()["output"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_deployment_answers_text_and_tool_calls(
    gateway: GatewayProcess, mock_provider: MockProcess, stream: bool
) -> None:
    client = gateway.client()
    if stream:
        events = list(client.responses.create(model="sonnet", input="hello claude", stream=True))
        assert events[-1].type == "response.completed"
        text = events[-1].response  # type: ignore[union-attr]
    else:
        text = client.responses.create(model="sonnet", input="hello claude")
    assert "hello claude" in text.output_text and text.model == "sonnet"
    assert text.usage is not None and text.usage.output_tokens > 0
    assert mock_provider.last_request()["path"].endswith("/messages")
    called = client.responses.create(
        model="sonnet", input="weather in Oslo?", tools=[WEATHER], tool_choice="required"
    )
    (call,) = called.output
    assert call.type == "function_call" and call.name == "get_weather"
    client.responses.create(
        model="sonnet",
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "cold"}],
    )
    sent = mock_provider.last_request()["body"]["messages"]
    assert sent[-1]["content"][0]["type"] == "tool_result"
    assert sent[-1]["content"][0]["tool_use_id"] == call.call_id


def test_input_items_list_the_conversation_a_response_was_given(gateway: GatewayProcess) -> None:
    client = gateway.client()
    first = client.responses.create(model="mock-gpt", input="first question")
    second = client.responses.create(
        model="mock-gpt",
        previous_response_id=first.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "second question"}]}],
    )
    newest_first = list(client.responses.input_items.list(second.id))
    assert [item.type for item in newest_first] == ["message", "message", "message"]
    texts = [item.content[0].text for item in newest_first]  # type: ignore[union-attr]
    assert texts == ["second question", first.output_text, "first question"]
    paged = list(client.responses.input_items.list(second.id, order="asc", limit=1))
    assert [item.id for item in paged] == [item.id for item in reversed(newest_first)]
    assert paged[1].id == first.output[0].id
    with gateway.http() as http:
        page = http.get(f"/v1/responses/{second.id}/input_items", params={"limit": 2}).json()
        assert page["has_more"] is True and page["last_id"] == page["data"][1]["id"]
        bad = http.get(f"/v1/responses/{second.id}/input_items", params={"limit": 0})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    other = create_key(gateway, f"ws-c-{uuid.uuid4().hex[:6]}", "--workspace", "resp-c")
    with pytest.raises(openai.NotFoundError):
        list(gateway.client(other.plaintext).responses.input_items.list(second.id))
