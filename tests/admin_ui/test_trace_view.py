"""A trace made readable: header totals, decision verdicts and facts, stored content."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from admin_ui import trace_view


def decision(kind: str, output: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "sequence": extra.pop("sequence", 1),
        "type": kind,
        "component": extra.pop("component", "router"),
        "rule_id": extra.pop("rule_id", None),
        "rule_name": extra.pop("rule_name", None),
        "input": extra.pop("input", {}),
        "output": output,
        "reasoning": extra.pop("reasoning", "because"),
        "evaluation_us": extra.pop("evaluation_us", 12.5),
    }


def test_the_summary_prefers_the_trace_columns() -> None:
    trace = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_usd": Decimal("0.5"),
        "ttft_ms": 40.0,
        "deployment": "mock/a",
        "cache_hit": False,
    }
    interactions = [{"prompt_tokens": 99, "cost_usd": Decimal("9"), "deployment": "mock/b"}]
    summary = trace_view.summarise(trace, interactions)
    assert (summary.total_tokens, summary.cost_usd, summary.deployment) == (
        15,
        Decimal("0.5"),
        "mock/a",
    )
    assert summary.attempts == 1


def test_the_summary_adds_up_the_attempts_when_the_trace_has_no_totals() -> None:
    trace: dict[str, Any] = {"cache_hit": False}
    interactions = [
        {"prompt_tokens": None, "cost_usd": None, "deployment": "mock/a", "ttft_ms": None},
        {
            "prompt_tokens": 30,
            "completion_tokens": 8,
            "total_tokens": 38,
            "cost_usd": Decimal("0.0000034"),
            "deployment": "backup/b",
            "requested_model": "large",
            "ttft_ms": 47.9,
            "usage_estimated": True,
        },
    ]
    summary = trace_view.summarise(trace, interactions)
    assert summary.prompt_tokens == 30 and summary.total_tokens == 38
    assert summary.cost_usd == Decimal("0.0000034")
    assert summary.deployment == "backup/b" and summary.served_model == "large"
    assert summary.ttft_ms == 47.9
    assert summary.attempts == 2 and summary.usage_estimated


def test_no_interactions_means_no_totals() -> None:
    summary = trace_view.summarise({"cache_hit": False}, [])
    assert summary.total_tokens is None and summary.cost_usd is None and summary.attempts == 0


@pytest.mark.parametrize(
    ("kind", "output", "extra", "verdict", "tone"),
    [
        ("model_selection", {"deployment": "mock/a"}, {}, "selected", "ok"),
        ("model_selection", {}, {}, "none available", "error"),
        ("rule_evaluation", {"route": "large"}, {"input": {"rules_matched": 2}}, "2 matched", "ok"),
        ("rule_evaluation", {}, {"input": {"rules_matched": 0}}, "no match", "neutral"),
        ("rule_evaluation", {"route": "x"}, {"rule_id": "premium"}, "matched", "ok"),
        ("rule_evaluation", {"deny": {"status": 403}}, {}, "denied", "error"),
        ("retry", {"retry": 1}, {}, "retry", "warning"),
        ("fallback", {"to": "large"}, {}, "fallback", "warning"),
        ("cache_decision", {"status": "HIT", "degraded": False}, {}, "hit", "ok"),
        ("cache_decision", {"status": "MISS", "degraded": False}, {}, "miss", "neutral"),
        ("cache_decision", {"status": "MISS", "degraded": True}, {}, "degraded", "warning"),
        (
            "rate_limit",
            {"allowed": True, "degraded": False, "unavailable": False},
            {},
            "allowed",
            "ok",
        ),
        ("rate_limit", {"allowed": False, "retry_after_s": 2}, {}, "refused", "error"),
        ("budget_check", {"allowed": True, "unavailable": True}, {}, "unavailable", "error"),
        ("guardrail", {"outcome": "pass"}, {}, "pass", "ok"),
        ("guardrail", {"outcome": "masked"}, {}, "masked", "warning"),
        ("guardrail", {"outcome": "block"}, {}, "block", "error"),
        ("something_new", {}, {}, "recorded", "neutral"),
    ],
)
def test_decision_verdicts(
    kind: str, output: dict[str, Any], extra: dict[str, Any], verdict: str, tone: str
) -> None:
    view = trace_view.decision_view(decision(kind, output, **extra))
    assert (view.verdict, view.tone) == (verdict, tone)


def test_a_matched_rule_shows_its_name_evidence_and_actions() -> None:
    view = trace_view.decision_view(
        decision(
            "rule_evaluation",
            {"route": "large", "tags": ["routed-premium"], "set": {"temperature": 0}},
            rule_id="premium",
            rule_name="Premium traffic",
            input={"matched_on": ['tags contains "premium"'], "source": "config"},
            component="rules",
            sequence=2,
        )
    )
    assert view.label == "Rules" and view.sequence == 2
    assert view.rule == "Premium traffic (premium)"
    assert view.evidence == ['tags contains "premium"']
    assert ("route", "large") in view.facts
    assert ("tags", "routed-premium") in view.facts
    assert ("set", '{"temperature": 0}') in view.facts
    assert view.evaluation == "12.5 µs"


def test_changed_parameters_read_from_and_to() -> None:
    view = trace_view.decision_view(
        decision(
            "rule_evaluation",
            {
                "parameters_changed": {
                    "temperature": {"from": None, "to": 0},
                    "max_tokens": {"from": 400, "to": 16},
                }
            },
        )
    )
    assert view.facts == [("parameters changed", "temperature: null → 0; max_tokens: 400 → 16")]


def test_quiet_flags_are_left_out_of_the_facts() -> None:
    view = trace_view.decision_view(
        decision(
            "rate_limit",
            {"allowed": True, "degraded": False, "unavailable": False, "retry_after_s": None},
        )
    )
    assert view.facts == []
    retry = trace_view.decision_view(decision("retry", {"retry": 1, "delay_s": 0.004728863691}))
    assert ("delay s", "0.004729") in retry.facts


def test_a_model_selection_lists_its_candidates_and_the_chosen_one() -> None:
    view = trace_view.decision_view(
        decision(
            "model_selection",
            {"provider": "mock", "deployment": "mock/a"},
            input={"candidates": [{"deployment": "mock/a"}, {"deployment": "backup/b"}, "junk"]},
        )
    )
    assert [c["deployment"] for c in view.candidates] == ["mock/a", "backup/b"]
    assert view.chosen == "mock/a"


def test_chat_messages_become_readable_blocks() -> None:
    shown = trace_view.messages(
        [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                ],
            },
            {"role": "assistant", "content": '{"reply": "a cat"}', "refusal": None},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        ]
    )
    assert [m.role for m in shown] == ["system", "user", "assistant", "assistant"]
    assert shown[0].blocks[0].text == "Be brief." and not shown[0].blocks[0].is_json
    assert shown[1].blocks[0].text == "What is in this picture?"
    assert shown[1].blocks[1].is_json and '"image_url"' in shown[1].blocks[1].text
    assert shown[2].blocks[0].is_json and shown[2].blocks[0].text == '{\n  "reply": "a cat"\n}'
    assert len(shown[2].blocks) == 1  # a null refusal is not shown
    assert '"tool_calls"' in shown[3].blocks[0].text


def test_streamed_answers_and_embedding_inputs() -> None:
    streamed = trace_view.messages([{"index": 0, "content": "Echo"}])
    assert streamed[0].role == "choice 0" and streamed[0].blocks[0].text == "Echo"
    embedded = trace_view.messages(["one", "two"])
    assert embedded[0].role == "input" and embedded[0].blocks[0].is_json


def test_long_content_is_collapsed_with_a_summary() -> None:
    text = "first line of a long answer\n" + "more words here\n" * 40
    long = trace_view.block(text)
    assert long.long and long.summary == "first line of a long answer…"
    short = trace_view.block("short")
    assert not short.long and short.summary == "short"
    wide = trace_view.block("x" * 700)
    assert wide.long and len(wide.summary) == 121
