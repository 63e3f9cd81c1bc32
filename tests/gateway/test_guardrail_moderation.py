"""Moderation guardrails: reading a moderation model's scores, thresholds, the config, and the
checks over a request, an answer and a stream against the mock provider's `/v1/moderations`
(served in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from gateway.config.file import ConfigError, parse_config
from gateway.guardrails.engine import Guardrails
from gateway.guardrails.model import CheckContext
from gateway.guardrails.moderation import ModerationCall
from gateway.guardrails.moderation_model import (
    CATEGORIES,
    ModerationFailed,
    ModerationSpec,
    fold_scores,
    parse_endpoint_answer,
    parse_judge_answer,
    placeholder,
    rate,
)
from gateway.guardrails.moderation_stream import ModerationStream
from gateway.upstream.routing import Router
from providers.mock.moderations import plan_moderation, score_text
from providers.mock_server import MockServer, start_mock_server
from providers.upstream import UpstreamClient

# --- reading scores ----------------------------------------------------------------------------


def test_sub_categories_fold_into_their_family() -> None:
    folded = fold_scores(
        {"harassment": 0.2, "harassment/threatening": 0.7, "self_harm": 0.3, "hate": True},
        {"sexual": True, "harassment": False},
    )
    assert folded == {"harassment": 0.7, "self-harm": 0.3, "sexual": 1.0}


def test_scores_are_clamped_to_zero_and_one() -> None:
    assert fold_scores({"violence": 1.7, "hate": -0.2}) == {"violence": 1.0, "hate": 0.0}


def test_an_endpoint_answer_gives_one_score_set_per_input() -> None:
    raw = plan_moderation({"input": ["you idiot", "lovely gardens", "gore"]}).body
    first, second, third = parse_endpoint_answer(raw, 3)
    assert first["harassment"] == 0.81
    assert max(second.values()) == 0.0
    assert third["violence"] == 0.91  # violence/graphic
    with pytest.raises(ModerationFailed, match="2 input"):
        parse_endpoint_answer(raw, 2)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"<html>", "not JSON"),
        (b'{"results": [1]}', "not an object"),
        (b'{"results": [{"flagged": true}]}', "neither category_scores nor categories"),
        (b'{"error": "no"}', "no results"),
    ],
)
def test_a_broken_endpoint_answer_is_a_failure(raw: bytes, problem: str) -> None:
    with pytest.raises(ModerationFailed, match=problem):
        parse_endpoint_answer(raw, 1)


def test_a_judge_answer_is_read_plain_fenced_or_bare() -> None:
    assert parse_judge_answer('{"scores": {"hate": 0.9}}') == {"hate": 0.9}
    assert parse_judge_answer('```json\n{"scores": {"Hate": 0.9}}\n```') == {"hate": 0.9}
    assert parse_judge_answer('{"violence": 0.25, "sexual": 0}') == {
        "violence": 0.25,
        "sexual": 0.0,
    }


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no text"),
        ("I would rate this as safe.", "did not answer JSON"),
        ("[0.1, 0.2]", "not a JSON object"),
        ('{"scores": ["high"]}', "not an object"),
        ('{"scores": {"hate": "high"}}', "not numbers"),
    ],
)
def test_a_judge_answer_that_is_not_scores_is_a_failure(content: Any, problem: str) -> None:
    with pytest.raises(ModerationFailed, match=problem):
        parse_judge_answer(content)


def test_thresholds_per_category_and_the_guardrails_default() -> None:
    spec = ModerationSpec(
        provider="p",
        model="m",
        categories=("harassment", "violence", "hate"),
        thresholds={"violence": 0.9},
    )
    rating = rate({"harassment": 0.5, "violence": 0.86, "hate": 0.49, "sexual": 1.0}, spec, 0.5)
    assert rating.flagged == ("harassment",)
    assert rating.scores == {"harassment": 0.5, "violence": 0.86, "hate": 0.49}  # sexual unlisted
    assert rating.top == 0.86
    assert rate({}, spec, 0.5).flagged == ()
    assert placeholder(("harassment", "violence")) == "<MODERATED: harassment, violence>"


def test_the_mock_scores_whole_words_only() -> None:
    assert score_text("KILL")["violence"] == 0.86
    assert score_text("skilled killers")["violence"] == 0.0
    assert plan_moderation({"input": "x [[moderation-delay-ms:250]]"}).delay_ms == 250
    assert plan_moderation({"input": ["[[moderation-error:503]]"]}).error_status == 503


# --- the config --------------------------------------------------------------------------------

PROVIDERS = {
    "mock": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
    "claude": {"type": "anthropic", "base_url": "http://127.0.0.1:9"},
}
MODELS = {"judge": [{"provider": "mock", "model": "judge-1"}]}


def _config(definition: dict[str, Any]) -> Any:
    return parse_config(
        {
            "providers": PROVIDERS,
            "models": MODELS,
            "guardrails": {"definitions": {"mod": {"kind": "moderation", **definition}}},
        }
    )


def _problems(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _config(definition)
    return caught.value.problems


def test_a_moderation_guardrail_in_the_config() -> None:
    config = _config(
        {
            "provider": "mock",
            "model": "omni-moderation-latest",
            "action": "mask",
            "direction": "both",
            "categories": ["harassment", "Violence", "self_harm", "illicit"],
            "thresholds": {"violence": 0.8},
            "timeout_ms": 1500,
        }
    )
    spec = config.guardrails.definitions["mod"]
    assert (spec.kind, spec.action, spec.direction, spec.threshold) == (
        "moderation",
        "mask",
        "both",
        0.5,
    )
    assert spec.moderation == ModerationSpec(
        provider="mock",
        model="omni-moderation-latest",
        categories=("harassment", "violence", "self-harm", "illicit"),
        thresholds={"violence": 0.8},
        timeout_ms=1500,
    )
    judge = _config({"judge_model": "judge"}).guardrails.definitions["mod"].moderation
    assert judge.judge_model == "judge" and judge.categories == CATEGORIES


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({}, "needs provider and model"),
        ({"provider": "mock"}, "needs provider and model"),
        ({"provider": "mock", "model": "m", "judge_model": "judge"}, "not both"),
        ({"provider": "nowhere", "model": "m"}, "mod.provider: unknown provider 'nowhere'"),
        ({"provider": "claude", "model": "m"}, "no OpenAI-compatible /moderations"),
        ({"judge_model": "ghost"}, "mod.judge_model: unknown model 'ghost'"),
        ({"judge_model": "judge", "categories": []}, "non-empty list"),
        ({"judge_model": "judge", "categories": ["Bad Name"]}, "categories[0]"),
        (
            {"judge_model": "judge", "thresholds": {"sexual": 0.5}, "categories": ["hate"]},
            "not one",
        ),
        ({"judge_model": "judge", "thresholds": {"hate": 0}}, "above 0"),
        ({"judge_model": "judge", "timeout_ms": 0}, "timeout_ms"),
        ({"judge_model": "judge", "entities": ["x"]}, "entities"),
    ],
)
def test_config_problems_name_their_place(definition: dict[str, Any], problem: str) -> None:
    problems = _problems(definition)
    assert any(problem in line for line in problems), problems
    assert all(line.startswith("guardrails.definitions.mod") for line in problems), problems


# --- the checks, against the mock provider's endpoint ------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    server = await start_mock_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def _guardrails(
    mock: MockServer, upstream: UpstreamClient, **definitions: dict[str, Any]
) -> Guardrails:
    config = parse_config(
        {
            "providers": {"mock": {"type": "openai", "base_url": mock.base_url}},
            "guardrails": {
                "definitions": {
                    name: {"kind": "moderation", "provider": "mock", "model": "m", **d}
                    for name, d in definitions.items()
                }
            },
        }
    )
    guardrails = Guardrails(config.guardrails)
    router = Router.from_config(config, {}, config.price_table())
    guardrails.connect_moderation(providers=config.providers, router=router, upstream=upstream)
    return guardrails


CONTEXT = CheckContext(direction="input")


async def test_input_mask_reads_people_and_skips_the_applications_own_instructions(
    mock: MockServer, upstream: UpstreamClient
) -> None:
    guardrails = _guardrails(mock, upstream, mod={"action": "mask"})
    selection = guardrails.select(key=["mod"])
    assert selection is not None
    payload = {
        "messages": [
            {"role": "system", "content": "never kill the mood"},
            {"role": "user", "content": [{"type": "text", "text": "you idiot"}]},
            {"role": "assistant", "content": "fine", "tool_calls": [_call("kill")]},
            {"role": "user", "content": "thanks"},
        ]
    }
    outcome = await guardrails.check_input(selection, payload, "chat", CONTEXT)
    (verdict,) = outcome.verdicts
    assert (verdict.outcome, verdict.entities) == ("masked", {"harassment": 1})
    messages = payload["messages"]
    assert messages[0]["content"] == "never kill the mood"
    assert messages[1]["content"][0]["text"] == "<MODERATED: harassment>"
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"do": "kill"}'
    (call,) = outcome.moderation_calls
    assert (call.texts, call.status) == (3, "ok")  # the user texts and the assistant's
    assert mock.last_request is not None
    assert mock.last_request["body"]["input"] == ["you idiot", "fine", "thanks"]


def _call(word: str) -> dict[str, Any]:
    arguments = msgspec.json.encode({"do": word}).decode().replace(":", ": ")
    return {"id": "c1", "type": "function", "function": {"name": "act", "arguments": arguments}}


async def test_an_endpoint_error_is_a_failed_check(
    mock: MockServer, upstream: UpstreamClient
) -> None:
    guardrails = _guardrails(mock, upstream, mod={"action": "block"})
    selection = guardrails.select(key=["mod"])
    assert selection is not None
    payload = {"messages": [{"role": "user", "content": "hi [[moderation-error:500]]"}]}
    outcome = await guardrails.check_input(selection, payload, "chat", CONTEXT)
    assert outcome.blocked is not None and outcome.blocked.failed
    assert "answered 500" in outcome.blocked.reason


async def test_an_unconnected_guardrail_fails(mock: MockServer) -> None:
    config = parse_config(
        {
            "providers": {"mock": {"type": "openai", "base_url": mock.base_url}},
            "guardrails": {
                "definitions": {"mod": {"kind": "moderation", "provider": "mock", "model": "m"}}
            },
        }
    )
    guardrails = Guardrails(config.guardrails)
    selection = guardrails.select(key=["mod"])
    assert selection is not None
    payload = {"messages": [{"role": "user", "content": "hello"}]}
    outcome = await guardrails.check_input(selection, payload, "chat", CONTEXT)
    assert outcome.blocked is not None and "not connected" in outcome.blocked.reason


async def test_a_whole_answer_keeps_its_bytes_unless_something_is_done(
    mock: MockServer, upstream: UpstreamClient
) -> None:
    guardrails = _guardrails(
        mock,
        upstream,
        log={"action": "log", "direction": "output"},
        block={"action": "block", "direction": "output"},
    )
    body = msgspec.json.encode(
        {
            "choices": [
                {"index": 0, "message": {"content": "lovely"}, "finish_reason": "stop"},
                {"index": 1, "message": {"content": "kill"}, "finish_reason": "stop"},
            ]
        }
    )
    output = CheckContext(direction="output")
    logged = guardrails.select(key=["log"])
    same, verdicts = await guardrails.check_output(logged, None, body, output)
    assert same is body and verdicts[0].outcome == "flagged"
    blocked = guardrails.select(key=["block"])
    calls: list[ModerationCall] = []
    changed, verdicts = await guardrails.check_output(blocked, None, body, output, calls)
    choices = msgspec.json.decode(changed)["choices"]
    assert choices[0]["message"]["content"] == "lovely"
    assert (choices[1]["message"]["content"], choices[1]["finish_reason"]) == (
        None,
        "content_filter",
    )
    assert verdicts[0].entities == {"violence": 1}
    assert len(calls) == 1 and calls[0].direction == "output"


def _events(words: list[str], finish: str = "stop") -> list[bytes]:
    events = [
        b"data: " + msgspec.json.encode({"choices": [{"index": 0, "delta": {"content": word}}]})
        for word in words
    ]
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    return [*events, b"data: " + msgspec.json.encode(last), b"data: [DONE]"]


def _text(events: list[bytes]) -> str:
    parts = []
    for event in events:
        data = event.removeprefix(b"data: ")
        if data != b"[DONE]":
            for choice in msgspec.json.decode(data)["choices"]:
                parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


async def test_a_held_back_stream_releases_moderated_segments(
    mock: MockServer, upstream: UpstreamClient
) -> None:
    guardrails = _guardrails(
        mock, upstream, mask={"action": "mask", "direction": "output", "stream_chars": 10}
    )
    selection = guardrails.select(key=["mask"])
    assert selection is not None
    stream = ModerationStream(selection.remote_output, window_chars=0)
    first, blocked = await stream.process(_events(["lovely ", "gardens "])[:1])
    assert _text(first) == "" and not blocked  # 7 characters: held back
    second, _ = await stream.process(_events(["gardens ", "then ", "kill ", "them"])[:4])
    assert _text(second) == "lovely gardens <MODERATED: violence>"  # "then kill " was a segment
    rest, blocked = await stream.process(_events([])[-2:])
    assert _text(rest) == "them" and not blocked  # released as the choice finishes
    (verdict,) = await stream.verdicts()
    assert (verdict.outcome, verdict.entities) == ("masked", {"violence": 1})
    assert [c.texts for c in stream.calls] == [1, 1, 1]


async def test_a_held_back_stream_fails_closed(mock: MockServer, upstream: UpstreamClient) -> None:
    guardrails = _guardrails(
        mock, upstream, block={"action": "block", "direction": "output", "stream_chars": 10}
    )
    selection = guardrails.select(key=["block"])
    assert selection is not None
    stream = ModerationStream(selection.remote_output)
    out, blocked = await stream.process(_events(["fine so far, ", "[[moderation-error:502]]"]))
    assert blocked
    assert _text(out) == "fine so far, "  # the segment before the failure was moderated clean
    finish = msgspec.json.decode(out[-2].removeprefix(b"data: "))["choices"][0]["finish_reason"]
    assert (finish, out[-1]) == ("content_filter", b"data: [DONE]")
    (verdict,) = await stream.verdicts()
    assert verdict.outcome == "error" and "answered 502" in verdict.reason
    assert [call.status for call in stream.calls] == ["ok", "error"]


async def test_a_log_only_stream_passes_its_bytes_and_asks_at_the_end(
    mock: MockServer, upstream: UpstreamClient
) -> None:
    guardrails = _guardrails(mock, upstream, log={"action": "log", "direction": "output"})
    selection = guardrails.select(key=["log"])
    assert selection is not None
    stream = ModerationStream(selection.remote_output)
    events = _events(["you ", "idiot"])
    out, blocked = await stream.process(events)
    assert out == events and not blocked
    assert stream.calls == []
    (verdict,) = await stream.verdicts()
    assert (verdict.outcome, verdict.entities) == ("flagged", {"harassment": 1})
    assert len(stream.calls) == 1
