"""Moderation guardrails through the running gateway, against the mock provider's
`/v1/moderations` (which scores from words: `idiot` is harassment 0.81, `kill` violence 0.86,
`loser` harassment 0.42; `[[moderation-delay-ms:N]]` slows its answer).

Steering rules pick the guardrail by tag, so one gateway serves every case.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from providers.mock_server import reply_text
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_keys import create_key

SLOW = "[[moderation-delay-ms:1500]]"
ENDPOINT = {"kind": "moderation", "provider": "mock", "model": "omni-moderation-latest"}
GUARDRAILS = {
    "definitions": {
        "mod-block": {**ENDPOINT, "action": "block"},
        "mod-mask": {**ENDPOINT, "action": "mask"},
        "mod-strict": {**ENDPOINT, "action": "block", "thresholds": {"harassment": 0.4}},
        "mod-out-log": {**ENDPOINT, "action": "log", "direction": "output"},
        "mod-out-block": {**ENDPOINT, "action": "block", "direction": "output", "stream_chars": 20},
        "mod-out-mask": {**ENDPOINT, "action": "mask", "direction": "output", "stream_chars": 20},
        "mod-closed": {**ENDPOINT, "action": "block", "timeout_ms": 300},
        "mod-open": {**ENDPOINT, "action": "log", "timeout_ms": 300},
        "pii-mask": {"kind": "pii", "action": "mask"},
    }
}
RULES = [
    {"id": f"guard-{name}", "when": {"tags": name}, "then": {"guardrails": [name]}}
    for name in GUARDRAILS["definitions"]
] + [
    {
        "id": "pii-then-moderation",
        "when": {"tags": "pii-and-mod"},
        "then": {"guardrails": ["mod-block", "pii-mask"]},
    }
]
TABLES = ("traces", "spans", "decisions", "ai_interactions", "guardrail_violations")


@pytest.fixture(scope="module")
def moderated(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider, guardrails=GUARDRAILS, rules=RULES),
        tmp_path_factory.mktemp("moderated"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _chat(
    gateway: GatewayProcess, tag: str, text: str
) -> tuple[openai.types.chat.ChatCompletion, dict[str, str]]:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[
            {"role": "system", "content": "You are a kind assistant; never kill a conversation."},
            {"role": "user", "content": text},
        ],
        extra_headers={"x-steerway-tags": tag, "x-request-id": uuid.uuid4().hex},
    )
    return raw.parse(), dict(raw.headers)


def _stream(gateway: GatewayProcess, tag: str, text: str) -> tuple[str, str | None, str]:
    with gateway.client().chat.completions.with_streaming_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": text}],
        stream=True,
        extra_headers={"x-steerway-tags": tag},
    ) as response:
        trace_id = response.headers["x-steerway-trace-id"]
        parts, finish = [], None
        for chunk in response.parse():
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
    return "".join(parts), finish, trace_id


def _decision(database: Database, trace_id: str, guardrail: str, direction: str) -> dict[str, Any]:
    rows = database.wait_rows(
        "SELECT * FROM decisions WHERE trace_id = :t AND type = 'guardrail'", 1, t=trace_id
    )
    for row in rows:
        given = _json(row["input"])
        if given["guardrail"] == guardrail and given["direction"] == direction:
            return {**row, "input": given, "output": _json(row["output"])}
    raise AssertionError(f"no {direction} decision of {guardrail} in {rows}")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _spans(database: Database, trace_id: str) -> list[dict[str, Any]]:
    rows = database.wait_rows(
        "SELECT * FROM spans WHERE trace_id = :t AND name = 'guardrails.moderation'",
        1,
        t=trace_id,
    )
    return [{**row, "attributes": _json(row["attributes"])} for row in rows]


def test_block_on_input_refuses_before_the_provider(
    moderated: GatewayProcess, mock_provider: MockProcess
) -> None:
    before = mock_provider.stats()["requests"].get("/v1/chat/completions", 0)
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(moderated, "mod-block", "you are an idiot")
    error = caught.value
    assert error.status_code == 400
    assert error.code == "guardrail_violation"
    assert "harassment (1)" in error.message
    assert "idiot" not in error.message
    assert mock_provider.stats()["requests"].get("/v1/chat/completions", 0) == before
    trace_id = error.response.headers["x-steerway-trace-id"]
    assert error.response.headers["x-steerway-guardrails"] == "mod-block=blocked"
    decision = _decision(moderated.database, trace_id, "mod-block", "input")
    assert decision["output"]["outcome"] == "blocked"
    assert decision["output"]["entities"] == {"harassment": 1}
    assert decision["output"]["score"] == pytest.approx(0.81)
    assert "mock/omni-moderation-latest" in decision["reasoning"]
    violation = moderated.database.wait_rows(
        "SELECT * FROM guardrail_violations WHERE trace_id = :t", 1, t=trace_id
    )[0]
    assert violation["kind"] == "moderation"
    assert violation["action"] == "block"
    assert _json(violation["entities"]) == {"harassment": 1}
    span = _spans(moderated.database, trace_id)[0]
    assert span["component"] == "guardrails"
    assert span["status"] == "ok"
    assert span["attributes"]["outcome"] == "ok"
    assert span["attributes"]["texts"] == 1  # the system prompt is the application's own
    assert span["attributes"]["moderation.model"] == "mock/omni-moderation-latest"
    assert span["duration_ms"] >= 0
    stored = [
        moderated.database.rows(f"SELECT * FROM {table} WHERE trace_id = :t", t=trace_id)
        for table in TABLES
    ]
    assert "idiot" not in json.dumps(stored, default=str)  # refused before anything was stored


def test_clean_input_passes_and_the_check_shows_in_the_trace(moderated: GatewayProcess) -> None:
    answer, headers = _chat(moderated, "mod-block", "tell me about gardens")
    assert answer.choices[0].finish_reason == "stop"
    assert headers["x-steerway-guardrails"] == "mod-block=pass"
    trace_id = headers["x-steerway-trace-id"]
    decision = _decision(moderated.database, trace_id, "mod-block", "input")
    assert decision["output"]["outcome"] == "pass"
    assert decision["evaluation_us"] > 0
    assert _spans(moderated.database, trace_id)[0]["attributes"]["outcome"] == "ok"
    rows = moderated.database.rows(
        "SELECT * FROM guardrail_violations WHERE trace_id = :t", t=trace_id
    )
    assert rows == []


def test_per_category_threshold(moderated: GatewayProcess) -> None:
    _, headers = _chat(moderated, "mod-block", "what a loser")  # harassment 0.42 < 0.5
    assert headers["x-steerway-guardrails"] == "mod-block=pass"
    with pytest.raises(openai.BadRequestError):
        _chat(moderated, "mod-strict", "what a loser")  # its harassment threshold is 0.4


def test_mask_on_input_replaces_the_flagged_message(
    moderated: GatewayProcess, mock_provider: MockProcess
) -> None:
    answer, headers = _chat(moderated, "mod-mask", "I will kill the idiot")
    assert headers["x-steerway-guardrails"] == "mod-mask=masked"
    sent = mock_provider.last_request()["body"]["messages"]
    assert sent[1]["content"] == "<MODERATED: harassment, violence>"
    assert sent[0]["content"].startswith("You are a kind assistant")
    assert "idiot" not in (answer.choices[0].message.content or "")


def test_log_on_output_records_and_lets_the_answer_through(moderated: GatewayProcess) -> None:
    answer, headers = _chat(moderated, "mod-out-log", "say idiot")
    assert "idiot" in (answer.choices[0].message.content or "")
    assert answer.choices[0].finish_reason == "stop"
    assert headers["x-steerway-guardrails"] == "mod-out-log@output=flagged"
    trace_id = headers["x-steerway-trace-id"]
    decision = _decision(moderated.database, trace_id, "mod-out-log", "output")
    assert decision["output"]["outcome"] == "flagged"
    violation = moderated.database.wait_rows(
        "SELECT * FROM guardrail_violations WHERE trace_id = :t", 1, t=trace_id
    )[0]
    assert (violation["direction"], violation["action"]) == ("output", "log")
    assert _json(violation["entities"]) == {"harassment": 1}


def test_block_on_a_whole_answer_filters_the_choice(moderated: GatewayProcess) -> None:
    answer, headers = _chat(moderated, "mod-out-block", "say kill")
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content is None
    assert headers["x-steerway-guardrails"] == "mod-out-block@output=blocked"


def test_mask_on_a_whole_answer_replaces_its_text(moderated: GatewayProcess) -> None:
    answer, _ = _chat(moderated, "mod-out-mask", "say kill")
    assert answer.choices[0].message.content == "<MODERATED: violence>"
    assert answer.choices[0].finish_reason == "content_filter"


def test_a_stream_in_log_mode_is_unchanged_and_recorded(moderated: GatewayProcess) -> None:
    text, finish, trace_id = _stream(moderated, "mod-out-log", "say idiot")
    assert "idiot" in text
    assert finish == "stop"
    decision = _decision(moderated.database, trace_id, "mod-out-log", "output")
    assert decision["output"]["outcome"] == "flagged"
    assert "recorded, not enforced" in decision["reasoning"]
    assert _spans(moderated.database, trace_id)[0]["attributes"]["direction"] == "output"


def test_a_stream_held_back_ends_before_the_flagged_segment(moderated: GatewayProcess) -> None:
    text, finish, trace_id = _stream(moderated, "mod-out-block", "please kill")
    assert finish == "content_filter"
    assert "kill" not in text
    decision = _decision(moderated.database, trace_id, "mod-out-block", "output")
    assert decision["output"]["outcome"] == "blocked"
    clean, finish, _ = _stream(moderated, "mod-out-block", "gardens are lovely")
    assert finish == "stop"
    assert clean == reply_text("gardens are lovely", 8)


def test_a_stream_held_back_masks_flagged_segments(moderated: GatewayProcess) -> None:
    text, finish, _ = _stream(moderated, "mod-out-mask", "please kill")
    assert "kill" not in text
    assert "<MODERATED: violence>" in text
    assert finish == "stop"


def test_a_timeout_fails_closed_under_block(moderated: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(moderated, "mod-closed", f"hello {SLOW}")
    error = caught.value
    assert error.status_code == 503
    assert error.code == "guardrail_unavailable"
    trace_id = error.response.headers["x-steerway-trace-id"]
    decision = _decision(moderated.database, trace_id, "mod-closed", "input")
    assert decision["output"]["outcome"] == "error"
    assert "300 ms" in decision["reasoning"]
    span = _spans(moderated.database, trace_id)[0]
    assert (span["status"], span["attributes"]["outcome"]) == ("error", "timeout")
    violation = moderated.database.wait_rows(
        "SELECT * FROM guardrail_violations WHERE trace_id = :t", 1, t=trace_id
    )[0]
    assert violation["guardrail"] == "mod-closed"


def test_a_timeout_fails_open_under_log(moderated: GatewayProcess) -> None:
    answer, headers = _chat(moderated, "mod-open", f"hello {SLOW}")
    assert answer.choices[0].finish_reason == "stop"
    assert headers["x-steerway-guardrails"] == "mod-open=error"


def test_a_keys_moderation_applies_and_its_violation_is_the_keys(
    moderated: GatewayProcess,
) -> None:
    key = create_key(
        moderated, "--name", "mod-" + uuid.uuid4().hex[:6], "--guardrails", "mod-block"
    )
    client = moderated.client(api_key=key.plaintext)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "vermin"}]
        )
    trace_id = caught.value.response.headers["x-steerway-trace-id"]
    violation = moderated.database.wait_rows(
        "SELECT * FROM guardrail_violations WHERE trace_id = :t", 1, t=trace_id
    )[0]
    assert (violation["api_key_id"], violation["workspace_id"]) == (key.key_id, key.workspace_id)
    assert _json(violation["entities"]) == {"hate": 1}


def test_embedding_inputs_are_moderated(moderated: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError):
        moderated.client().embeddings.create(
            model="mock-embedding",
            input=["lovely", "gore"],
            extra_headers={"x-steerway-tags": "mod-block"},
        )


def test_the_moderation_model_reads_text_other_guardrails_masked(
    moderated: GatewayProcess, mock_provider: MockProcess
) -> None:
    with pytest.raises(openai.BadRequestError):
        _chat(moderated, "pii-and-mod", "idiot, write to jane.doe@example.com")
    sent = mock_provider.last_request()  # refused: the last call was the moderation's
    assert sent["path"] == "/v1/moderations"
    assert sent["body"]["input"] == ["idiot, write to <EMAIL_ADDRESS>"]
