"""OTLP export requests read into spans (`telemetry.otlp_ingest_spans`) and GenAI spans turned into
trace bundles (`telemetry.otlp_ingest_genai`, `telemetry.otlp_ingest_content`), without a server."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from providers.pricing import ModelPrice, PriceTable
from telemetry.otlp_ingest_genai import IngestContext, Window, to_bundle
from telemetry.otlp_ingest_spans import (
    OtlpDecodeError,
    OtlpSpan,
    SpanRejected,
    TooManySpans,
    decode_json,
    decode_protobuf,
)
from tests.e2e.otlp_payloads import SpanSpec, genai_attributes, json_request, protobuf_request

LIMITS = {"max_spans": 100, "max_attribute_length": 10_000}
PRICES = PriceTable({"model-a": ModelPrice(Decimal("2"), Decimal("8"), Decimal("1"))})


def context(store_content: bool = True) -> IngestContext:
    return IngestContext(
        workspace_id="w" * 32,
        api_key_id="k" * 32,
        prices=PRICES,
        store_content=store_content,
        now=time.time(),
        window=Window(max_age=3600.0, max_future=60.0),
    )


def one(spec: SpanSpec) -> OtlpSpan:
    decoded = decode_protobuf(protobuf_request([spec]), **LIMITS)
    (span,) = decoded.candidates
    return span


def test_protobuf_and_json_read_into_the_same_spans() -> None:
    specs = [
        SpanSpec(
            "chat model-a",
            genai_attributes("model-a", 5, 6, **{"gen_ai.response.finish_reasons": ["stop"]}),
            events=[("gen_ai.user.message", {"content": "hi"})],
            error="boom",
        ),
        SpanSpec("SELECT", {"db.system": "postgresql"}),
    ]
    from_protobuf = decode_protobuf(protobuf_request(specs), **LIMITS)
    from_json = decode_json(json_request(specs), **LIMITS)
    assert from_protobuf == from_json
    assert from_json.ignored == 1 and from_json.rejected == []
    (span,) = from_json.candidates
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        specs[0].trace_id,
        specs[0].span_id,
        specs[0].parent_span_id,
    )
    assert span.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert (span.status_code, span.status_message, span.service) == (2, "boom", "billing-app")


def test_undecodable_bodies_say_why() -> None:
    with pytest.raises(OtlpDecodeError, match="not a protobuf"):
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f", **LIMITS)
    with pytest.raises(
        OtlpDecodeError, match=r"Expected `array`, got `str` - at `\$.resourceSpans`"
    ):
        decode_json(b'{"resourceSpans": "x"}', **LIMITS)
    with pytest.raises(OtlpDecodeError):
        decode_json(b"[" * 100_000, **LIMITS)
    spans = [SpanSpec("x", {}) for _ in range(3)]
    with pytest.raises(TooManySpans, match="holds 3 spans; at most 2"):
        decode_json(json_request(spans), max_spans=2, max_attribute_length=10)


def test_a_span_with_an_oversized_or_malformed_value_is_rejected_alone() -> None:
    big = SpanSpec("chat big", genai_attributes("model-a", 1, 1, **{"gen_ai.prompt": "x" * 101}))
    nested = SpanSpec("chat deep", genai_attributes("model-a", 1, 1))
    good = SpanSpec("chat good", genai_attributes("model-a", 1, 1))
    body = json.loads(json_request([big, nested, good]))
    deep: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(20):
        deep = {"arrayValue": {"values": [deep]}}
    spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["attributes"].append({"key": "deep", "value": deep})
    spans[2]["traceId"] = spans[2]["traceId"][:30]
    decoded = decode_json(json.dumps(body).encode(), max_spans=10, max_attribute_length=100)
    assert decoded.candidates == []
    assert decoded.rejected == [
        "span 'chat big': attribute 'gen_ai.prompt' is longer than the limit of 100 characters",
        "span 'chat deep': attribute 'deep' is nested deeper than 16",
        "span 'chat good': traceId is not 32 hex digits, or is all zeros",
    ]


def test_a_model_call_becomes_a_trace_priced_from_the_table() -> None:
    spec = SpanSpec(
        "chat model-a",
        genai_attributes(
            "model-a",
            1000,
            200,
            **{
                "gen_ai.provider.name": "gcp.gemini",
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
                ),
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "be kind"}]),
            },
        ),
        duration=2.0,
    )
    bundle = to_bundle(one(spec), context())
    assert bundle is not None
    (interaction,) = bundle.interactions
    assert interaction.provider == "gemini"
    assert interaction.cost_usd == Decimal("0.0032")  # 600 x 2 + 400 x 1 + 200 x 8, per million
    assert interaction.prompt == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hello"},
    ]
    assert interaction.latency_ms == pytest.approx(2000.0, abs=1.0)
    assert bundle.trace.source == "otlp" and bundle.trace.parent_trace_id == spec.trace_id
    assert bundle.trace.trace_id not in (spec.trace_id, spec.span_id)
    assert "gen_ai.input.messages" not in bundle.spans[0].attributes
    withheld = to_bundle(one(spec), context(store_content=False))
    assert withheld is not None and withheld.interactions[0].prompt is None


def test_tool_calls_and_answers_keep_the_openai_message_shape() -> None:
    output = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": 1}}],
            "finish_reason": "tool_calls",
        }
    ]
    spec = SpanSpec(
        "chat",
        genai_attributes("model-a", 1, 1, **{"gen_ai.output.messages": json.dumps(output)}),
    )
    bundle = to_bundle(one(spec), context())
    assert bundle is not None
    interaction = bundle.interactions[0]
    assert interaction.response == [
        {
            "role": "assistant",
            "content": None,
            "finish_reason": "tool_calls",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":1}'},
                }
            ],
        }
    ]
    assert interaction.finish_reason == "tool_calls"


def test_spans_that_are_not_model_calls_are_ignored() -> None:
    tool = SpanSpec("execute_tool", {"gen_ai.operation.name": "execute_tool"})
    agent = SpanSpec(
        "agent", {**genai_attributes("model-a", 9, 9), "gen_ai.operation.name": "invoke_agent"}
    )
    no_model = SpanSpec("chat", {"gen_ai.system": "openai"})
    for spec in (tool, agent, no_model):
        assert to_bundle(one(spec), context()) is None


def test_times_outside_the_window_are_refused_not_clamped() -> None:
    now = time.time()
    late = SpanSpec("chat", genai_attributes("model-a", 1, 1), ended=now + 3600)
    old = SpanSpec("chat", genai_attributes("model-a", 1, 1), ended=now - 7200)
    with pytest.raises(SpanRejected, match="in the future"):
        to_bundle(one(late), context())
    with pytest.raises(SpanRejected, match="ago, longer than the 3600 s accepted"):
        to_bundle(one(old), context())


@pytest.mark.parametrize(
    ("given", "kept"),
    [(0.3, 300.0), (float("inf"), None), (float("nan"), None), (5.0, None), (-0.1, None)],
)
def test_time_to_first_token_is_kept_only_when_it_fits_inside_the_span(
    given: float, kept: float | None
) -> None:
    spec = SpanSpec(
        "chat",
        genai_attributes("model-a", 1, 1, **{"gen_ai.response.time_to_first_chunk": given}),
        duration=1.0,
    )
    bundle = to_bundle(one(spec), context())
    assert bundle is not None
    ttft = bundle.interactions[0].ttft_ms
    assert ttft == (None if kept is None else pytest.approx(kept))
