"""The sampling policy: what is always kept whole, and the ratio decided per trace id."""

from __future__ import annotations

import dataclasses
import hashlib

import msgspec
import pytest

from telemetry.records import TraceBundle
from telemetry.trace_sampling import TraceSampling, ratio_share
from tests.telemetry import make_bundle
from tests.telemetry.test_summary import add_decision, add_violation

FIXED_IDS = [f"{n:032x}" for n in range(2000)]
NOTHING_ALWAYS = TraceSampling(
    ratio=0.0, errors=False, slow_ms=0, guardrail_verdicts=False, rule_denials=False
)


def _share_by_hand(trace_id: str) -> float:
    """The documented rule, written out again: BLAKE2b-64 of the id's ASCII bytes, big-endian
    over 2^64."""
    hasher = hashlib.new("blake2b", digest_size=8)
    hasher.update(trace_id.encode("ascii"))
    return int(hasher.hexdigest(), 16) / 2**64


def _with_id(bundle: TraceBundle, trace_id: str) -> TraceBundle:
    return msgspec.structs.replace(
        bundle, trace=msgspec.structs.replace(bundle.trace, trace_id=trace_id)
    )


@pytest.mark.parametrize(("ratio", "kept"), [(0.5, 1018), (0.1, 201), (0.01, 15)])
def test_the_ratio_keeps_the_ids_the_documented_hash_puts_below_it(ratio: float, kept: int) -> None:
    sampling = TraceSampling(ratio=ratio)
    plain = make_bundle()
    chosen = {i for i in FIXED_IDS if sampling.keeps(_with_id(plain, i))}
    assert chosen == {i for i in FIXED_IDS if _share_by_hand(i) < ratio}
    assert len(chosen) == kept


def test_the_same_id_gets_the_same_answer_and_a_larger_ratio_keeps_a_superset() -> None:
    shares = [ratio_share(i) for i in FIXED_IDS]
    assert shares == [ratio_share(i) for i in FIXED_IDS]
    kept_at = {
        ratio: {i for i, share in zip(FIXED_IDS, shares, strict=True) if share < ratio}
        for ratio in (0.01, 0.1, 0.5)
    }
    assert kept_at[0.01] < kept_at[0.1] < kept_at[0.5]


def test_ratio_zero_keeps_a_plain_request_out_and_ratio_one_keeps_it() -> None:
    plain = make_bundle()
    assert not NOTHING_ALWAYS.keeps(plain)
    assert TraceSampling(ratio=1.0, errors=False).keeps(plain)


def test_an_error_status_or_http_status_of_400_and_above_is_kept() -> None:
    sampling = TraceSampling(ratio=0.0)
    upstream_failed = make_bundle(status="error")
    assert sampling.keeps(upstream_failed)
    assert not dataclasses.replace(sampling, errors=False).keeps(upstream_failed)
    refused = make_bundle()
    refused.trace.http_status = 429
    assert sampling.keeps(refused)
    broken_stream = make_bundle()
    broken_stream.trace.status = "error"  # the stream failed after its 200 header
    assert sampling.keeps(broken_stream)
    client_left = make_bundle()
    client_left.trace.status, client_left.trace.http_status = "cancelled", 499
    assert sampling.keeps(client_left)
    assert not sampling.keeps(make_bundle())


def test_a_request_longer_than_slow_ms_is_kept() -> None:
    sampling = dataclasses.replace(NOTHING_ALWAYS, slow_ms=500.0)
    assert sampling.keeps(make_bundle(latency_ms=800.0))
    assert not sampling.keeps(make_bundle(latency_ms=100.0))
    assert not NOTHING_ALWAYS.keeps(make_bundle(latency_ms=800.0))


@pytest.mark.parametrize("action", ["block", "mask", "log"])
def test_a_guardrail_finding_is_kept(action: str) -> None:
    bundle = make_bundle()
    add_violation(bundle, "pii", action)
    assert dataclasses.replace(NOTHING_ALWAYS, guardrail_verdicts=True).keeps(bundle)
    assert not NOTHING_ALWAYS.keeps(bundle)


def test_a_guardrail_that_failed_is_kept_one_that_passed_is_not() -> None:
    sampling = dataclasses.replace(NOTHING_ALWAYS, guardrail_verdicts=True)
    passed, failed, admitted = make_bundle(), make_bundle(), make_bundle()
    add_decision(passed, "guardrail", "guardrails", output={"outcome": "pass"})
    add_decision(failed, "guardrail", "guardrails", output={"outcome": "error"})
    add_decision(admitted, "guardrail", "admission", output={"allowed": False})
    assert not sampling.keeps(passed)
    assert sampling.keeps(failed)
    assert not sampling.keeps(admitted)  # the key's allowed models, not a guardrail's verdict


def test_a_rule_denial_is_kept_a_rule_match_is_not() -> None:
    sampling = dataclasses.replace(NOTHING_ALWAYS, rule_denials=True)
    denied, matched = make_bundle(), make_bundle()
    add_decision(
        denied, "rule_evaluation", "rules", output={"deny": {"status": 403}}, reasoning="deny"
    )
    add_decision(
        matched, "rule_evaluation", "rules", input={"rules_matched": ["r1"]}, output={"tags": []}
    )
    assert sampling.keeps(denied)
    assert not sampling.keeps(matched)
    assert not NOTHING_ALWAYS.keeps(denied)


def test_a_trace_marked_for_evaluation_is_kept() -> None:
    marked = msgspec.structs.replace(make_bundle(), for_evaluation=True)
    assert TraceSampling(ratio=0.0, errors=False).keeps(marked)
    assert not TraceSampling(ratio=0.0, errors=False, evaluation=False).keeps(marked)


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_a_ratio_outside_zero_to_one_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio must be from 0 to 1"):
        TraceSampling(ratio=ratio)
