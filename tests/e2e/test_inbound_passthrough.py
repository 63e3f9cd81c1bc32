"""Pass-through, on SQLite and Postgres: `/v1/messages` to an Anthropic deployment and
`/v1/responses` to an OpenAI one reach the mock provider as the client wrote them, and its
answers (whole and streamed) come back byte for byte, while usage, cost, budgets, rules and
guardrails work as for translated requests; where pass-through does not apply the request is
translated, and a fallback from a native deployment to another provider translates."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import anthropic
import httpx
import openai
import pytest

from telemetry.schema import money_from_sql
from tests.e2e.conftest import GatewayProcess, MockProcess
from tests.e2e.inbound_gateway import inbound_gateway_fixture
from tests.e2e.test_keys import create_key

CLAUDE = "claude-sonnet-4-5-20250929"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
RULES = [
    {
        "id": "tag-messages",
        "continue": True,
        "when": {"operation": "messages"},
        "then": {"tag": "via-messages"},
    },
    {"id": "guard-pii", "when": {"tags": "pii"}, "then": {"guardrails": ["pii-block"]}},
    {"id": "mask-pii", "when": {"tags": "mask"}, "then": {"guardrails": ["pii-mask"]}},
    {"id": "mask-out", "when": {"tags": "mask-out"}, "then": {"guardrails": ["pii-out"]}},
]
EMAIL = "ada@example.com"

gateway = inbound_gateway_fixture(
    "passthrough",
    guardrails={
        "definitions": {
            "pii-block": {"kind": "pii", "action": "block"},
            "pii-mask": {"kind": "pii", "action": "mask"},
            "pii-out": {"kind": "pii", "direction": "output", "action": "mask"},
        }
    },
    rules=RULES,
    extra_providers={
        "native-openai": {"type": "openai", "base_url": "{mock}", "passthrough": True},
    },
    extra_models={
        "gpt-native": [{"provider": "native-openai", "model": "mock-gpt"}],
        "sonnet-or-gpt": {
            "deployments": [{"provider": "claude", "model": CLAUDE}],
            "fallbacks": ["mock-gpt"],
        },
    },
)


def _same_ids(text: str) -> str:
    """Ids and times differ between two answers of the mock; everything else must not."""
    text = re.sub(r'"(id|call_id|item_id)":"[^"]*"', r'"\1":"-"', text)
    return re.sub(r'"created_at":\d+', '"created_at":0', text)


def _spans(gateway: GatewayProcess, trace_id: str, count: int = 1) -> list[dict[str, Any]]:
    rows = gateway.database.wait_rows(
        "SELECT * FROM spans WHERE trace_id = :t AND name = 'provider.chat' ORDER BY started_at",
        count=count,
        t=trace_id,
    )
    for row in rows:
        if isinstance(row["attributes"], str):
            row["attributes"] = json.loads(row["attributes"])
    return rows


def _interactions(gateway: GatewayProcess, trace_id: str, count: int = 1) -> list[dict[str, Any]]:
    return gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t ORDER BY attempt",
        count=count,
        t=trace_id,
    )


def _post(url: str, path: str, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {**ANTHROPIC_HEADERS, "x-api-key": key or "unused"}
    with httpx.Client(timeout=30) as http:
        return http.post(url + path, json=body, headers=headers)


def _messages_body(question: str, **extra: Any) -> dict[str, Any]:
    """A Messages body with what the gateway's translation drops: thinking (asked for and in
    an earlier turn) and a cache breakpoint on the system prompt."""
    return {
        "model": "sonnet",
        "max_tokens": 64,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [
            {
                "type": "text",
                "text": f"You answer briefly. {question}",
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "messages": [
            {"role": "user", "content": "the first question"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "An earlier thought.", "signature": "sig-1"},
                    {"type": "text", "text": "the first answer"},
                ],
            },
            {"role": "user", "content": question},
        ],
        **extra,
    }


def test_a_message_passes_through_both_ways(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = f"pass me through {uuid.uuid4().hex[:8]}"
    body = _messages_body(question)
    direct = {**body, "model": CLAUDE}
    _post(mock_provider.url, "/v1/messages", direct, None).raise_for_status()  # writes the cache
    through = _post(gateway.url, "/v1/messages", body, gateway.master_key)
    assert through.status_code == 200, through.text
    assert mock_provider.last_request()["body"] == direct
    again = _post(mock_provider.url, "/v1/messages", direct, None)
    assert _same_ids(through.text) == _same_ids(again.text)

    answer = through.json()
    assert answer["model"] == CLAUDE
    assert [block["type"] for block in answer["content"]] == ["thinking", "text"]
    assert answer["content"][0]["signature"] == "mock-signature-0001"
    usage = answer["usage"]
    assert usage["cache_read_input_tokens"] > 0 and usage["cache_creation_input_tokens"] == 0

    trace_id = through.headers["x-steerway-trace-id"]
    (row,) = _interactions(gateway, trace_id)
    assert row["operation"] == "messages" and row["provider"] == "claude"
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"]
    assert row["prompt_tokens"] == prompt
    assert row["cached_tokens"] == usage["cache_read_input_tokens"]
    assert row["completion_tokens"] == usage["output_tokens"]
    assert row["finish_reason"] == "stop"
    assert row["cost_usd"] is not None and row["cost_usd"] > 0
    (span,) = _spans(gateway, trace_id)
    assert span["attributes"]["steerway.inbound.mode"] == "passthrough"
    assert "tag-messages" in through.headers["x-steerway-rules"]


def test_a_streamed_message_passes_through_event_for_event(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = f"stream me through {uuid.uuid4().hex[:8]}"
    body = _messages_body(question, stream=True)
    direct = {**body, "model": CLAUDE}
    _post(mock_provider.url, "/v1/messages", direct, None).raise_for_status()
    through = _post(gateway.url, "/v1/messages", body, gateway.master_key)
    assert through.status_code == 200
    assert through.headers["content-type"].startswith("text/event-stream")
    assert mock_provider.last_request()["body"] == direct
    again = _post(mock_provider.url, "/v1/messages", direct, None)
    assert _same_ids(through.text) == _same_ids(again.text)
    assert "signature_delta" in through.text and "cache_read_input_tokens" in through.text

    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    sdk_body = {k: v for k, v in body.items() if k != "stream"}
    with client.messages.stream(**sdk_body) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].type == "thinking"
    assert final.content[1].type == "text" and question in final.content[1].text
    whole = client.messages.create(**sdk_body)
    assert whole.content[1].text == final.content[1].text  # type: ignore[union-attr]

    trace_id = through.headers["x-steerway-trace-id"]
    (row,) = _interactions(gateway, trace_id)
    assert row["stream"] and row["status"] == "ok" and row["operation"] == "messages"
    assert row["completion_tokens"] == final.usage.output_tokens
    assert row["ttft_ms"] is not None
    (span,) = _spans(gateway, trace_id)
    assert span["attributes"]["steerway.inbound.mode"] == "passthrough"


def test_a_budget_is_charged_and_guardrails_apply(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    key = create_key(gateway, f"native-{uuid.uuid4().hex[:6]}", "--budget", "5/total")
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key.plaintext, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="sonnet", max_tokens=32, messages=[{"role": "user", "content": "charge me"}]
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    (row,) = _interactions(gateway, trace_id)
    dialect = "sqlite" if gateway.database.url.startswith("sqlite") else "postgresql"
    cost = money_from_sql(row["cost_usd"], dialect)
    assert cost is not None
    micros = round(cost * 1_000_000)
    assert micros > 0
    spent = gateway.database.wait_rows(
        "SELECT spent_micros FROM budget_spend WHERE subject = :key AND spent_micros > 0",
        key=key.key_id,
    )
    assert [r["spent_micros"] for r in spent] == [micros]

    with pytest.raises(anthropic.BadRequestError) as blocked:
        client.messages.create(
            model="sonnet",
            max_tokens=32,
            messages=[{"role": "user", "content": f"mail {EMAIL} please"}],
            extra_headers={"x-steerway-tags": "pii"},
        )
    assert blocked.value.body["type"] == "error"  # type: ignore[index]

    # A masked request cannot pass through as written: it is translated, masked.
    masked = client.messages.with_raw_response.create(
        model="sonnet",
        max_tokens=32,
        messages=[{"role": "user", "content": f"mail {EMAIL} please"}],
        extra_headers={"x-steerway-tags": "mask"},
    )
    sent = mock_provider.last_request()["body"]
    assert EMAIL not in json.dumps(sent)
    (span,) = _spans(gateway, masked.headers["x-steerway-trace-id"])
    assert span["attributes"]["steerway.inbound.mode"] == "translated"

    # An output guardrail that changes a whole answer: the client gets it translated.
    changed = client.messages.with_raw_response.create(
        model="sonnet",
        max_tokens=32,
        messages=[{"role": "user", "content": f"say {EMAIL}"}],
        extra_headers={"x-steerway-tags": "mask-out"},
    )
    assert EMAIL in json.dumps(mock_provider.last_request()["body"])
    text = changed.parse().content[0]
    assert text.type == "text" and EMAIL not in text.text
    (span,) = _spans(gateway, changed.headers["x-steerway-trace-id"])
    assert span["attributes"]["steerway.inbound.mode"] == "translated"


def test_a_fallback_from_a_native_deployment_translates(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="sonnet-or-gpt",
        max_tokens=32,
        messages=[{"role": "user", "content": "fall back please"}],
        extra_body={"mock": {"error": 500}},
    )
    message = raw.parse()
    assert message.type == "message" and "fall back please" in message.content[0].text  # type: ignore[union-attr]
    assert mock_provider.last_request()["path"] == "/v1/chat/completions"
    trace_id = raw.headers["x-steerway-trace-id"]
    first, second = _spans(gateway, trace_id, count=2)
    assert first["attributes"]["steerway.inbound.mode"] == "passthrough"
    assert first["status"] == "error"
    assert second["attributes"]["steerway.inbound.mode"] == "translated"
    rows = _interactions(gateway, trace_id, count=2)
    assert [r["provider"] for r in rows] == ["claude", "mock"]
    assert {r["operation"] for r in rows} == {"messages"}


def test_a_response_passes_through_to_an_openai_deployment(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = f"respond through {uuid.uuid4().hex[:8]}"
    body = {"model": "gpt-native", "input": question, "reasoning": {"effort": "low"}}
    with httpx.Client(timeout=30) as http:
        auth = {"Authorization": f"Bearer {gateway.master_key}"}
        through = http.post(f"{gateway.base_url}/responses", json=body, headers=auth)
        assert through.status_code == 200, through.text
        assert mock_provider.last_request()["path"] == "/v1/responses"
        assert mock_provider.last_request()["body"] == {**body, "model": "mock-gpt"}
        direct = http.post(
            f"{mock_provider.base_url}/responses", json={**body, "model": "mock-gpt"}
        )
    assert _same_ids(through.text) == _same_ids(direct.text)
    answer = through.json()
    assert [item["type"] for item in answer["output"]] == ["reasoning", "message"]

    client = gateway.client()
    kept = client.responses.retrieve(answer["id"])
    assert kept.output_text == answer["output"][1]["content"][0]["text"]
    trace_id = through.headers["x-steerway-trace-id"]
    (row,) = _interactions(gateway, trace_id)
    assert row["operation"] == "responses"
    assert row["prompt_tokens"] == answer["usage"]["input_tokens"]
    assert row["completion_tokens"] == answer["usage"]["output_tokens"]
    (span,) = _spans(gateway, trace_id)
    assert span["attributes"]["steerway.inbound.mode"] == "passthrough"

    events = list(client.responses.create(model="gpt-native", input=question, stream=True))
    assert mock_provider.last_request()["body"]["stream"] is True
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == kept.output_text and final.model == "mock-gpt"
    assert client.responses.retrieve(final.id).output_text == final.output_text

    # A follow-up continues the gateway's stored conversation, translated.
    follow = client.responses.create(
        model="gpt-native", input="and then?", previous_response_id=final.id
    )
    sent = mock_provider.last_request()
    assert sent["path"] == "/v1/chat/completions"
    assert [m["role"] for m in sent["body"]["messages"]] == ["user", "assistant", "user"]
    assert "and then?" in follow.output_text


def test_a_response_to_an_anthropic_deployment_is_translated(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    raw = gateway.client().responses.with_raw_response.create(model="sonnet", input="translate me")
    assert "translate me" in raw.parse().output_text
    assert mock_provider.last_request()["path"] == "/v1/messages"
    assert mock_provider.last_request()["body"]["messages"][0]["role"] == "user"
    (span,) = _spans(gateway, raw.headers["x-steerway-trace-id"])
    assert span["attributes"]["steerway.inbound.mode"] == "translated"


def test_a_passed_through_stream_that_breaks_ends_in_anthropics_shape(
    gateway: GatewayProcess,
) -> None:
    def stream(control: dict[str, Any]) -> httpx.Response:
        body = {
            "model": "sonnet",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "break this stream somewhere"}],
            "mock": {"chunks": 6, "ttft_ms": 20, "chunk_interval_ms": 20, **control},
        }
        return _post(gateway.url, "/v1/messages", body, gateway.master_key)

    told = stream({"drop_after_chunks": 2, "error": 529})
    kinds = [line[7:] for line in told.text.splitlines() if line.startswith("event: ")]
    assert kinds[-1] == "error" and "message_stop" not in kinds
    assert '"type":"overloaded_error"' in told.text  # the provider's own event, as it sent it
    assert told.text.count("event: error") == 1

    dropped = stream({"drop_after_chunks": 2})
    kinds = [line[7:] for line in dropped.text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "message_start" and "content_block_delta" in kinds
    assert kinds[-1] == "error" and "message_stop" not in kinds
    error = json.loads(dropped.text.rsplit("data: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    (row,) = _interactions(gateway, dropped.headers["x-steerway-trace-id"])
    assert row["status"] == "error" and row["error_type"] == "disconnected"


def test_a_cache_hit_answers_in_the_inbound_format(gateway: GatewayProcess) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.master_key, max_retries=0)
    question = f"cache me {uuid.uuid4().hex[:8]}"
    arguments: dict[str, Any] = {
        "model": "sonnet",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": question}],
        "extra_body": {"temperature": 0},
    }
    first = client.messages.with_raw_response.create(**arguments)
    second = client.messages.with_raw_response.create(**arguments)
    assert first.headers["x-steerway-cache"] == "MISS"
    assert second.headers["x-steerway-cache"] == "HIT"
    hit = second.parse()
    assert hit.type == "message" and hit.model == "sonnet"
    assert hit.content[0].text == first.parse().content[0].text  # type: ignore[union-attr]
    with client.messages.stream(**arguments) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text == hit.content[0].text  # type: ignore[union-attr]


def test_what_chat_cannot_carry_passes_through_and_is_refused_when_translated(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    body = {
        "model": "sonnet",
        "max_tokens": 32,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "A memo."},
                        "citations": {"enabled": True},
                    },
                    {"type": "text", "text": "summarise the memo"},
                ],
            }
        ],
    }
    through = _post(gateway.url, "/v1/messages", body, gateway.master_key)
    assert through.status_code == 200, through.text
    assert mock_provider.last_request()["body"] == {**body, "model": CLAUDE}
    assert "summarise the memo" in through.json()["content"][0]["text"]
    refused = _post(gateway.url, "/v1/messages", {**body, "model": "mock-gpt"}, gateway.master_key)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"

    client = gateway.client()
    hosted = {"input": "search for me", "tools": [{"type": "web_search"}]}
    answer = client.responses.create(model="gpt-native", **hosted)  # type: ignore[call-overload]
    assert mock_provider.last_request()["body"] == {"model": "mock-gpt", **hosted}
    assert "search for me" in answer.output_text
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.responses.create(model="mock-gpt", **hosted)  # type: ignore[call-overload]
    assert unsupported.value.body["code"] == "unsupported_tool"  # type: ignore[index]
