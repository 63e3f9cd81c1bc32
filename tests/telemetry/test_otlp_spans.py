"""Trace bundles as OTLP spans: kinds, names, parents, the remote-parent flag, the decision
summary and events, and values the protobuf must carry as their own types."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from opentelemetry.proto.trace.v1.trace_pb2 import (
    SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK,
    SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK,
    Span,
    Status,
)

from gateway.config.file import parse_config
from server.otlp_setup import provider_info
from telemetry.otlp_spans import ProviderInfo, SpanEncoder
from telemetry.otlp_values import any_value
from tests.otlp_receiver import attributes_of, value_of
from tests.telemetry.otlp_bundles import proxied

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
ENCODER = SpanEncoder(
    service_name="s", providers={"mock": ProviderInfo(gen_ai_name="openai", address="h", port=1)}
)


def _by_name(spans: list[Span]) -> dict[str, Span]:
    return {span.name: span for span in spans}


def test_kinds_names_and_parents() -> None:
    bundle = proxied()
    spans = _by_name(ENCODER.spans(bundle))
    assert set(spans) == {"POST /v1/chat/completions", "auth", "chat mock-gpt-0613"}
    root = spans["POST /v1/chat/completions"]
    assert root.kind == Span.SPAN_KIND_SERVER
    assert root.parent_span_id == b"" and root.flags == 0
    assert spans["auth"].kind == Span.SPAN_KIND_INTERNAL
    assert spans["chat mock-gpt-0613"].kind == Span.SPAN_KIND_CLIENT
    for name in ("auth", "chat mock-gpt-0613"):
        assert spans[name].parent_span_id == root.span_id
    assert {s.trace_id.hex() for s in spans.values()} == {bundle.trace.trace_id}
    assert attributes_of(spans["auth"].attributes) == {"steerway.key.id": "k1"}
    assert root.start_time_unix_nano == int(bundle.spans[0].started_at * 1e9)
    assert root.end_time_unix_nano > root.start_time_unix_nano


def test_a_callers_span_is_the_remote_parent_of_the_root() -> None:
    bundle = proxied(traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    spans = _by_name(ENCODER.spans(bundle))
    root = spans["POST /v1/chat/completions"]
    assert root.parent_span_id.hex() == CALLER_SPAN
    assert root.flags == SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    assert {s.trace_id.hex() for s in spans.values()} == {CALLER_TRACE}
    assert spans["auth"].flags == 0


def test_a_failed_call_is_an_error_without_a_response_model() -> None:
    spans = _by_name(ENCODER.spans(proxied(failed=True)))
    call = spans["chat mock-gpt-0613"]
    assert call.status.code == Status.STATUS_CODE_ERROR
    assert call.status.message == "502"
    attributes = attributes_of(call.attributes)
    assert attributes["error.type"] == "502"
    assert "gen_ai.response.model" not in attributes
    assert "gen_ai.usage.input_tokens" not in attributes
    root = spans["POST /v1/chat/completions"]
    assert root.status.code == Status.STATUS_CODE_ERROR
    assert attributes_of(root.attributes)["error.type"] == "upstream_error"
    assert spans["auth"].status.code == Status.STATUS_CODE_UNSET


def test_decisions_are_summed_up_on_the_root_and_kept_as_events() -> None:
    bundle = proxied(rule="cheap-first", cache_status="HIT")
    trace_id = bundle.trace.trace_id
    for verdict in (("pii", "masked"), ("codenames", "pass")):
        bundle.decisions.append(
            msgspec.structs.replace(
                bundle.decisions[0],
                type="guardrail",
                component="guardrails",
                input={"guardrail": verdict[0], "direction": "input"},
                output={"outcome": verdict[1], "score": 1.0},
                sequence=len(bundle.decisions) + 1,
            )
        )
    bundle.decisions.append(
        msgspec.structs.replace(
            bundle.decisions[0],
            type="retry",
            component="reliability",
            output={"retry": 1},
            sequence=len(bundle.decisions) + 1,
        )
    )
    root = _by_name(ENCODER.spans(bundle))["POST /v1/chat/completions"]
    attributes = attributes_of(root.attributes)
    assert attributes["steerway.trace_id"] == trace_id
    assert attributes["steerway.rule.matched"] == ["cheap-first"]
    assert attributes["steerway.rule.names"] == ["cheap-first name"]
    assert attributes["steerway.cache.status"] == "HIT"
    assert attributes["steerway.cache.hit"] is True
    assert attributes["steerway.guardrail.verdict"] == ["pii:masked", "codenames:pass"]
    assert attributes["steerway.retry.count"] == 1
    names = [event.name for event in root.events]
    assert names == [f"steerway.decision.{d.type}" for d in bundle.decisions]
    matched = attributes_of(root.events[1].attributes)
    assert matched["steerway.rule.id"] == "cheap-first"
    assert matched["steerway.decision.reasoning"] == "matched: model"
    assert msgspec.json.decode(matched["steerway.decision.output"]) == {"route_to": "mock-gpt"}
    assert root.events[1].time_unix_nano == int(bundle.decisions[1].created_at * 1e9)


def test_gen_ai_attributes_of_a_provider_call() -> None:
    bundle = proxied()
    call = _by_name(ENCODER.spans(bundle))["chat mock-gpt-0613"]
    attributes = attributes_of(call.attributes)
    (attempt,) = bundle.interactions
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "mock-gpt-0613",
        "gen_ai.response.model": "mock-gpt-0613",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["stop"],
        "server.address": "h",
        "server.port": 1,
        "http.response.status_code": 200,
        "steerway.provider": "mock",
        "steerway.deployment": "mock/mock-gpt",
        "steerway.model.requested": "mock-gpt",
        "steerway.attempt": 1,
        "steerway.stream": False,
        "steerway.cost_usd": 0.00042,
    }
    assert call.span_id.hex() == attempt.span_id


def test_provider_types_become_semantic_convention_names() -> None:
    config = parse_config(
        {
            "providers": {
                "oa": {"type": "openai", "base_url": "https://api.openai.com/v1"},
                "an": {"type": "anthropic"},
                "ge": {"type": "gemini"},
                "az": {
                    "type": "azure",
                    "base_url": "https://x.openai.azure.com",
                    "api_version": "2024-06-01",
                },
                "local": {"type": "openai", "base_url": "http://127.0.0.1:8080/v1"},
            }
        },
        {},
    )
    assert provider_info(config.providers) == {
        "oa": ProviderInfo(gen_ai_name="openai", address="api.openai.com", port=443),
        "an": ProviderInfo(gen_ai_name="anthropic", address="api.anthropic.com", port=443),
        "ge": ProviderInfo(
            gen_ai_name="gcp.gemini", address="generativelanguage.googleapis.com", port=443
        ),
        "az": ProviderInfo(gen_ai_name="azure.ai.openai", address="x.openai.azure.com", port=443),
        "local": ProviderInfo(gen_ai_name="openai", address="127.0.0.1", port=8080),
    }


def test_values_keep_their_types() -> None:
    assert value_of(any_value(True)) is True
    assert value_of(any_value(3)) == 3
    assert value_of(any_value(2**70)) == str(2**70)
    assert value_of(any_value(Decimal("0.25"))) == 0.25
    assert value_of(any_value(["a", None, "b"])) == ["a", "b"]
    assert value_of(any_value({"k": [1]})) == '{"k":[1]}'
