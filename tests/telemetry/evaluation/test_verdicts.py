"""Reading a judge's answer, building its prompt, and checking definitions: pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rules.recorded import condition_problem
from telemetry.evaluation.criteria import BUILT_IN
from telemetry.evaluation.definition import DefinitionError, parse_definition
from telemetry.evaluation.parsing import VerdictError, parse_verdict
from telemetry.evaluation.prompt import MAX_CONTENT_CHARS, build_messages, response_schema

DEFINITION = parse_definition(
    {"judge": "judge", "criteria": ["accuracy", {"name": "brevity", "rubric": "Short."}]}
)
CRITERIA = DEFINITION.criteria


def test_a_good_answer_is_read() -> None:
    verdict = parse_verdict(
        '{"scores": {"accuracy": 90, "brevity": 60.5, "extra": 3}, "rationale": "ok", '
        '"flags": ["Hallucination", "hallucination", " "]}',
        CRITERIA,
    )
    assert verdict.scores == {"accuracy": 90.0, "brevity": 60.5}
    assert verdict.score == pytest.approx(75.25)
    assert verdict.flags == ["hallucination"]


def test_an_answer_in_a_code_fence_is_read() -> None:
    text = '```json\n{"scores": {"accuracy": 1, "brevity": 2}, "rationale": "", "flags": []}\n```'
    assert parse_verdict(text, CRITERIA).scores == {"accuracy": 1.0, "brevity": 2.0}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Looks right to me.", "not_json"),
        ("", "refusal"),
        (None, "refusal"),
        ("I'm sorry, but I can't evaluate this.", "refusal"),
        ('{"refusal": "I will not"}', "refusal"),
        ("[1, 2]", "wrong_shape"),
        ('{"scores": [90, 60]}', "wrong_shape"),
        ('{"scores": {"accuracy": 90}}', "wrong_shape"),
        ('{"scores": {"accuracy": true, "brevity": 5}}', "wrong_shape"),
        ('{"scores": {"accuracy": "90", "brevity": 5}}', "wrong_shape"),
        ('{"scores": {"accuracy": 90, "brevity": 5}, "flags": "none"}', "wrong_shape"),
        ('{"scores": {"accuracy": 90, "brevity": 5}, "rationale": 7}', "wrong_shape"),
        ('{"scores": {"accuracy": 101, "brevity": 5}}', "out_of_range"),
        ('{"scores": {"accuracy": -1, "brevity": 5}}', "out_of_range"),
    ],
)
def test_bad_answers_are_refused_with_their_kind(text: str | None, kind: str) -> None:
    with pytest.raises(VerdictError) as refused:
        parse_verdict(text, CRITERIA)
    assert refused.value.kind == kind


def test_the_prompt_holds_the_rubrics_the_conversation_and_the_answer() -> None:
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
    ]
    messages = build_messages(prompt, [{"index": 0, "content": "Paris"}], CRITERIA)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert f"- accuracy: {BUILT_IN['accuracy']}" in user
    assert "- brevity: Short." in user
    assert "system: Be brief.\nuser: Capital of France?" in user
    assert "<answer>\nParis\n</answer>" in user
    long = build_messages(
        [{"role": "user", "content": "x" * (MAX_CONTENT_CHARS * 2)}], "y", CRITERIA
    )
    assert len(long[1]["content"]) < MAX_CONTENT_CHARS + 2000
    assert "[... cut for length]" in long[1]["content"]


def test_the_schema_requires_every_criterion_from_0_to_100() -> None:
    schema = response_schema(CRITERIA)
    scores = schema["properties"]["scores"]
    assert scores["required"] == ["accuracy", "brevity"]
    assert scores["properties"]["accuracy"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert schema["required"] == ["scores", "rationale", "flags"]


def test_a_definition_round_trips_through_its_stored_form() -> None:
    definition = parse_definition(
        {
            "condition": {"model": "gpt-4o"},
            "sampling_rate": 0.25,
            "judge": {"model": "judge", "temperature": 0.5, "timeout_s": 12},
            "criteria": ["safety", {"name": "policy", "rubric": "Follows the policy."}],
            "daily_cap_usd": "3.10",
            "max_attempts": 5,
        },
        models=["judge"],
    )
    stored = definition.to_json()
    assert stored["daily_cap_usd"] == "3.10"
    assert parse_definition(stored, stored=True) == definition
    assert definition.daily_cap_usd == Decimal("3.10")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not an object", "definition"),
        ({"judge": "judge", "sampling_rate": "half"}, "sampling_rate"),
        ({"judge": "judge", "sampling_rate": float("nan")}, "sampling_rate"),
        ({"judge": {"model": "judge", "timeout_s": 0}}, "judge.timeout_s"),
        ({"judge": {"model": "judge", "colour": 1}}, "judge.colour"),
        ({"judge": "judge", "criteria": []}, "criteria"),
        ({"judge": "judge", "criteria": ["accuracy", "accuracy"]}, "criteria[1].name"),
        ({"judge": "judge", "criteria": [{"name": "Bad Name", "rubric": "x"}]}, "criteria[0].name"),
        ({"judge": "judge", "criteria": [{"name": "x", "rubric": " "}]}, "criteria[0].rubric"),
        ({"judge": "judge", "criteria": ["c"] * 13}, "criteria"),
        ({"judge": "judge", "daily_cap_usd": "lots"}, "daily_cap_usd"),
        ({"judge": "judge", "daily_cap_usd": True}, "daily_cap_usd"),
        ({"judge": "judge", "max_attempts": 11}, "max_attempts"),
        ({"judge": "judge", "condition": ["model"]}, "condition"),
        ({"judge": "judge", "condition": {"model": {"regex": "("}}}, "condition.model.regex"),
        ({}, "judge"),
    ],
)
def test_a_bad_definition_names_its_field(body: object, field: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(body, models=["judge"], check_condition=condition_problem)
    assert refused.value.field == field
