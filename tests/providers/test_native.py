"""Pass-through's provider side: which providers speak an inbound API, the bodies sent, and
native answers read as the chat answers they stand for."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gateway.config.file import check_config, parse_config
from providers.anthropic_native import MessagesNative
from providers.errors import UpstreamFailure
from providers.native import MESSAGES, RESPONSES, native_api
from providers.openai_format import event_data, read_chunk
from providers.openai_responses_native import ResponsesNative
from providers.usage import Usage


@pytest.mark.parametrize(
    ("provider_type", "base_url", "setting", "expected"),
    [
        ("anthropic", "https://api.anthropic.com/v1", None, MESSAGES),
        ("anthropic", "http://127.0.0.1:9/v1", False, None),
        ("openai", "https://api.openai.com/v1", None, RESPONSES),
        ("openai", "https://api.openai.com/v1", False, None),
        ("openai", "http://127.0.0.1:8000/v1", None, None),
        ("openai", "http://127.0.0.1:8000/v1", True, RESPONSES),
        ("gemini", "https://generativelanguage.googleapis.com/v1beta", None, None),
        ("azure", "https://x.openai.azure.com", None, None),
    ],
)
def test_which_providers_speak_an_inbound_api(
    provider_type: str, base_url: str, setting: bool | None, expected: str | None
) -> None:
    assert native_api(provider_type, base_url, setting) == expected


def test_the_passthrough_setting_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "steerway.yaml"
    path.write_text(
        "providers:\n"
        "  g: {type: gemini, api_key: k, passthrough: true}\n"
        "  o: {type: openai, base_url: 'http://127.0.0.1:1/v1', passthrough: 'yes'}\n"
        "models:\n  m: [{provider: o, model: m}]\n",
        encoding="utf-8",
    )
    problems = check_config(path, {})
    assert any(
        "providers.g.passthrough" in p and "only openai and anthropic" in p for p in problems
    )
    assert any("providers.o.passthrough" in p and "true or false" in p for p in problems)
    config = parse_config(
        {
            "providers": {
                "o": {"type": "openai", "base_url": "http://127.0.0.1:1/v1", "passthrough": True}
            },
            "models": {"m": [{"provider": "o", "model": "m"}]},
        },
        {},
    )
    assert config.provider("o").passthrough is True


def test_a_messages_body_goes_upstream_with_only_its_model_replaced() -> None:
    body = {
        "model": "sonnet",
        "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    sent = msgspec.json.decode(MessagesNative().upstream_body(body, "claude-x"))
    assert sent == {**body, "model": "claude-x"}
    assert body["model"] == "sonnet"
    headers = {"anthropic-beta": "b1", "x-api-key": "secret", "anthropic-version": "2099"}
    assert MessagesNative().forwarded_headers(headers) == {"anthropic-beta": "b1"}


def test_a_whole_message_is_read_with_thinking_and_cache_counts() -> None:
    raw = msgspec.json.encode(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Hello"},
            ],
            "stop_reason": "max_tokens",
            "usage": {
                "input_tokens": 5,
                "cache_read_input_tokens": 7,
                "cache_creation_input_tokens": 2,
                "output_tokens": 3,
            },
        }
    )
    result = MessagesNative().read_whole(raw, "sonnet")
    assert result.usage == Usage(14, 3, 7, 17)
    assert result.finish_reasons == ["length"]
    assert result.messages[0]["content"] == "Hello"
    assert msgspec.json.decode(result.body)["model"] == "sonnet"


RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-x",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi there", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
        },
    ],
    "usage": {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 6,
        "total_tokens": 17,
    },
}


def test_a_whole_response_is_read_as_a_chat_answer() -> None:
    result = ResponsesNative().read_whole(msgspec.json.encode(RESPONSE), "public")
    assert result.usage == Usage(11, 6, 4, 17)
    assert result.finish_reasons == ["tool_calls"]
    message = result.messages[0]
    assert message["content"] == "Hi there"
    assert message["tool_calls"][0]["id"] == "call_1"
    incomplete = {**RESPONSE, "status": "incomplete", "output": RESPONSE["output"][:2]}
    incomplete["incomplete_details"] = {"reason": "max_output_tokens"}
    read = ResponsesNative().read_whole(msgspec.json.encode(incomplete), "public")
    assert read.finish_reasons == ["length"]
    with pytest.raises(UpstreamFailure):
        ResponsesNative().read_whole(b'{"object": "chat.completion"}', "public")


def test_a_responses_stream_is_read_as_chat_chunks() -> None:
    reader = ResponsesNative().stream_reader("public")
    events = [
        {"type": "response.created", "response": {**RESPONSE, "status": "in_progress"}},
        {"type": "response.output_text.delta", "delta": "Hi "},
        {"type": "response.output_text.delta", "delta": "there"},
        {"type": "response.completed", "response": RESPONSE},
    ]
    chunks = [c for e in events for c in reader.feed(msgspec.json.encode(e))]
    assert reader.finished and reader.final == RESPONSE
    datas = [event_data(c) for c in chunks]
    assert datas[-1] == b"[DONE]"
    read = [read_chunk(d) for d in datas[:-1] if d is not None]
    assert "".join(t for r in read for _, t in r.contents) == "Hi there"
    assert [r.finish_reason for r in read if r.finish_reason] == ["tool_calls"]
    assert read[-1].usage == Usage(11, 6, 4, 17)
    with pytest.raises(UpstreamFailure) as failed:
        reader.feed(b'{"type": "error", "code": "server_error", "message": "boom"}')
    assert failed.value.message == "boom"
