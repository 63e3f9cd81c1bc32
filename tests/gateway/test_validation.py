"""The request checks of the OpenAI routes: each rule, its status, its `param` and its `code`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.entry.validation import (
    MESSAGE_ROLES,
    decode_object,
    validate_chat,
    validate_embeddings,
)
from gateway.errors import GatewayError

HELLO = [{"role": "user", "content": "hello"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": HELLO, **fields}


def embeddings(**fields: Any) -> dict[str, Any]:
    return {"model": "text-embedding-3-small", "input": "hello", **fields}


def rejection(check: Any, payload: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        check(payload)
    error = caught.value
    assert error.status == 400
    assert error.type == "invalid_request_error"
    body = msgspec.json.decode(error.body())
    assert body == {
        "error": {
            "message": error.message,
            "type": "invalid_request_error",
            "param": error.param,
            "code": error.code,
        }
    }
    return error


# --- decode_object ----------------------------------------------------------------------------


def test_decode_object_returns_the_dict_with_unknown_fields() -> None:
    body = b'{"model": "m", "vendor_knob": {"depth": 3}, "n": 2}'
    assert decode_object(body) == {"model": "m", "vendor_knob": {"depth": 3}, "n": 2}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"42", b"null", b"true", b'{"a": 1', b"\xff\xfe{}"],
)
def test_decode_object_rejects_what_is_not_a_json_object(body: bytes) -> None:
    error = rejection(decode_object, body)
    assert error.code == "invalid_json"
    assert error.param == "body"


def test_decode_object_rejects_an_empty_body() -> None:
    error = rejection(decode_object, b"")
    assert "empty" in error.message


def test_decode_object_rejects_deep_nesting_as_a_400() -> None:
    depth = 5_000
    body = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
    assert rejection(decode_object, body).code == "invalid_json"


# --- validate_chat ----------------------------------------------------------------------------


def test_valid_chat_returns_the_model() -> None:
    payload = chat(
        stream=True,
        stream_options={"include_usage": True},
        n=2,
        temperature=0,
        top_p=0.5,
        max_tokens=10,
        max_completion_tokens=10,
        tools=[],
        response_format={"type": "json_object"},
        user="u-1",
        vendor_knob="kept",
    )
    assert validate_chat(payload) == "gpt-4o-mini"
    assert payload["vendor_knob"] == "kept"


@pytest.mark.parametrize("role", sorted(MESSAGE_ROLES))
def test_every_known_role_is_accepted(role: str) -> None:
    assert validate_chat(chat(messages=[{"role": role, "content": "x"}])) == "gpt-4o-mini"


def test_content_may_be_null_a_string_or_parts() -> None:
    messages = [
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "user"},
    ]
    assert validate_chat(chat(messages=messages)) == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        pytest.param({"messages": HELLO}, "model", None, id="model-missing"),
        pytest.param(chat(model=None), "model", None, id="model-null"),
        pytest.param(chat(model=5), "model", "invalid_type", id="model-number"),
        pytest.param(chat(model=""), "model", "invalid_type", id="model-empty"),
        pytest.param(chat(model=["a"]), "model", "invalid_type", id="model-array"),
        pytest.param({"model": "m"}, "messages", None, id="messages-missing"),
        pytest.param(chat(messages="hello"), "messages", "invalid_type", id="messages-string"),
        pytest.param(chat(messages={}), "messages", "invalid_type", id="messages-object"),
        pytest.param(chat(messages=[]), "messages", "empty_array", id="messages-empty"),
        pytest.param(chat(messages=["hi"]), "messages[0]", "invalid_type", id="message-string"),
        pytest.param(
            chat(messages=[*HELLO, None]), "messages[1]", "invalid_type", id="message-null"
        ),
        pytest.param(
            chat(messages=[{"content": "x"}]), "messages[0].role", None, id="role-missing"
        ),
        pytest.param(
            chat(messages=[{"role": "robot", "content": "x"}]),
            "messages[0].role",
            "invalid_value",
            id="role-unknown",
        ),
        pytest.param(
            chat(messages=[{"role": "User", "content": "x"}]),
            "messages[0].role",
            "invalid_value",
            id="role-wrong-case",
        ),
        pytest.param(
            chat(messages=[{"role": "user", "content": 3}]),
            "messages[0].content",
            "invalid_type",
            id="content-number",
        ),
        pytest.param(
            chat(messages=[{"role": "user", "content": {"text": "x"}}]),
            "messages[0].content",
            "invalid_type",
            id="content-object",
        ),
        pytest.param(chat(stream="yes"), "stream", "invalid_type", id="stream-string"),
        pytest.param(chat(stream=1), "stream", "invalid_type", id="stream-number"),
        pytest.param(chat(n=0), "n", "invalid_value", id="n-zero"),
        pytest.param(chat(n=-3), "n", "invalid_value", id="n-negative"),
        pytest.param(chat(n=1.5), "n", "invalid_type", id="n-float"),
        pytest.param(chat(n=True), "n", "invalid_type", id="n-bool"),
        pytest.param(chat(n="2"), "n", "invalid_type", id="n-string"),
        pytest.param(chat(max_tokens="10"), "max_tokens", "invalid_type", id="max-tokens"),
        pytest.param(
            chat(max_completion_tokens=1.5),
            "max_completion_tokens",
            "invalid_type",
            id="max-completion-tokens",
        ),
        pytest.param(chat(temperature="hot"), "temperature", "invalid_type", id="temperature"),
        pytest.param(chat(temperature=False), "temperature", "invalid_type", id="temp-bool"),
        pytest.param(chat(top_p=[1]), "top_p", "invalid_type", id="top-p"),
        pytest.param(chat(tools={}), "tools", "invalid_type", id="tools-object"),
        pytest.param(
            chat(response_format="json"), "response_format", "invalid_type", id="response-format"
        ),
        pytest.param(
            chat(stream=True, stream_options=True),
            "stream_options",
            "invalid_type",
            id="stream-options-bool",
        ),
        pytest.param(
            chat(stream_options={"include_usage": True}),
            "stream_options",
            None,
            id="stream-options-without-stream",
        ),
        pytest.param(
            chat(stream=False, stream_options={"include_usage": True}),
            "stream_options",
            None,
            id="stream-options-with-stream-false",
        ),
        pytest.param(chat(user=5), "user", "invalid_type", id="user-number"),
    ],
)
def test_chat_rejections(payload: dict[str, Any], param: str, code: str | None) -> None:
    error = rejection(validate_chat, payload)
    assert error.param == param
    assert error.code == code
    assert param.split("[")[0].split(".")[0] in error.message


@pytest.mark.parametrize("role", [["user"], {"name": "user"}, 3, True])
def test_a_role_of_the_wrong_type_is_a_400(role: Any) -> None:
    error = rejection(validate_chat, chat(messages=[{"role": role, "content": "x"}]))
    assert error.param == "messages[0].role"


def test_type_errors_name_what_was_received() -> None:
    assert "got a string" in rejection(validate_chat, chat(messages="x")).message
    assert "got a number" in rejection(validate_chat, chat(model=3)).message
    assert (
        "got a boolean" in rejection(validate_chat, chat(stream_options=False, stream=True)).message
    )
    assert "got an array" in rejection(validate_chat, chat(messages=[[]])).message
    assert "got an object" in rejection(validate_chat, chat(tools={})).message


def test_the_first_wrong_parameter_in_checking_order_is_the_one_reported() -> None:
    wrong = {
        "stream": "yes",
        "max_tokens": 0,
        "max_completion_tokens": "many",
        "n": -1,
        "temperature": "hot",
        "top_p": True,
        "tools": {},
        "response_format": [],
        "stream_options": 1,
        "user": 7,
    }
    reported = []
    while wrong:
        param = rejection(validate_chat, chat(**wrong)).param
        assert param is not None
        reported.append(param)
        del wrong[param]
    assert reported == [
        "stream",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "tools",
        "response_format",
        "stream_options",
        "user",
    ]


def test_null_optional_fields_are_absent_fields() -> None:
    payload = chat(stream=None, n=None, temperature=None, tools=None, stream_options=None)
    assert validate_chat(payload) == "gpt-4o-mini"


# --- validate_embeddings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["hello", ["a", "b"], [1, 2, 3], [[1, 2], [3]]],
    ids=["string", "strings", "tokens", "token-arrays"],
)
def test_valid_embeddings_return_the_model(value: Any) -> None:
    payload = embeddings(input=value, dimensions=8, encoding_format="base64", user="u")
    assert validate_embeddings(payload) == "text-embedding-3-small"


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        pytest.param({"input": "x"}, "model", None, id="model-missing"),
        pytest.param(embeddings(model=1), "model", "invalid_type", id="model-number"),
        pytest.param({"model": "m"}, "input", None, id="input-missing"),
        pytest.param(embeddings(input=None), "input", None, id="input-null"),
        pytest.param(embeddings(input=3), "input", "invalid_type", id="input-number"),
        pytest.param(embeddings(input={"a": 1}), "input", "invalid_type", id="input-object"),
        pytest.param(embeddings(input=[]), "input", "empty_array", id="input-empty"),
        pytest.param(
            embeddings(input=["a"], dimensions="8"), "dimensions", "invalid_type", id="dims-list"
        ),
        pytest.param(
            embeddings(input="a", dimensions="8"), "dimensions", "invalid_type", id="dims-string"
        ),
        pytest.param(
            embeddings(input="a", encoding_format=1),
            "encoding_format",
            "invalid_type",
            id="encoding-format",
        ),
        pytest.param(embeddings(input="a", user=["u"]), "user", "invalid_type", id="user"),
    ],
)
def test_embeddings_rejections(payload: dict[str, Any], param: str, code: str | None) -> None:
    error = rejection(validate_embeddings, payload)
    assert error.param == param
    assert error.code == code
