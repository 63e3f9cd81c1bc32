"""The fault scenario's pure logic: what counts as served, recorded, lost or unexpected, which
answers each fault allows, what the gateway's log says it dropped, and its options."""

from __future__ import annotations

from benchmarks.cli import ALL_SCENARIOS, build_parser
from benchmarks.faults_accounting import Window, count, expected, in_flight, label
from benchmarks.faults_catalog import FAULT_NAMES, FAULTS, upstream_directive
from benchmarks.faults_gateway import log_problems
from benchmarks.faults_load import Outcome
from benchmarks.faults_scenario import FaultReport

BY_NAME = {fault.name: fault for fault in FAULTS}


def outcome(
    number: int,
    *,
    sent: float = 0.0,
    elapsed: float = 0.01,
    status: int | None = 200,
    code: str | None = None,
    complete: bool = True,
    kind: str = "chat",
    key: str = "plain",
    trace_id: str | None = "auto",
    request_id: str = "",
) -> Outcome:
    return Outcome(
        number=number,
        kind=kind,
        key=key,
        sent=sent,
        elapsed=elapsed,
        status=status,
        code=code,
        trace_id=f"trace-{number:04d}" if trace_id == "auto" else trace_id,
        complete=complete,
        faulted=False,
        request_id=request_id or f"request-{number}",
    )


def test_labels_name_the_status_the_code_and_a_cut_answer() -> None:
    assert label(outcome(1)) == "200"
    assert label(outcome(2, status=502, code="upstream_error", complete=False)) == (
        "502 upstream_error"
    )
    assert label(outcome(3, code="upstream_error", complete=False, kind="stream")) == (
        "200 upstream_error incomplete"
    )
    assert label(outcome(4, status=None, code="refused", complete=False)) == ("no answer (refused)")


def test_a_fault_allows_its_own_answers_only_while_it_lasts() -> None:
    five_hundreds = BY_NAME["upstream-5xx"]
    bad_gateway = outcome(1, status=502, code="upstream_error", complete=False)
    assert expected(bad_gateway, five_hundreds)
    assert not expected(bad_gateway, None)
    assert not expected(bad_gateway, BY_NAME["database-away"])
    assert not expected(outcome(2, status=500, code="internal_error"), five_hundreds)
    cut_stream = outcome(3, kind="stream", code="upstream_error", complete=False)
    assert expected(cut_stream, BY_NAME["stream-cut"])
    assert not expected(cut_stream, five_hundreds)
    assert expected(outcome(4), None)


def test_redis_refusals_are_allowed_only_to_the_requests_their_policy_covers() -> None:
    def refused(number: int, key: str, kind: str = "chat") -> Outcome:
        return outcome(
            number, status=503, code="limits_unavailable", complete=False, key=key, kind=kind
        )

    budgeted, limited = refused(1, "budgeted"), refused(2, "limited")
    cacheable, embedding = refused(3, "plain", "cached"), refused(4, "master", "embeddings")
    defaults, flipped = BY_NAME["redis-away"], BY_NAME["redis-away-policies-flipped"]
    assert expected(budgeted, defaults)
    assert not expected(limited, defaults)
    assert not expected(cacheable, defaults)
    assert not expected(budgeted, flipped)
    assert expected(limited, flipped)
    assert expected(cacheable, flipped)
    assert expected(embedding, flipped)
    assert not expected(embedding, defaults)


def test_requests_in_flight_when_a_fault_begins_count_as_during_it() -> None:
    window = Window(start=5.0, end=10.0, settle=2.0)
    assert window.during(outcome(1, sent=4.9, elapsed=0.2))
    assert not window.during(outcome(2, sent=4.5, elapsed=0.2))
    assert window.during(outcome(3, sent=11.9))
    assert not window.during(outcome(4, sent=12.0))


def test_counts_served_recorded_lost_and_unexpected() -> None:
    fault = BY_NAME["database-away"]
    window = Window(start=1.0, end=2.0, settle=0.5)
    outcomes = [
        outcome(1, sent=0.1),
        outcome(2, sent=1.1, status=503, code="service_unavailable", complete=False),
        outcome(3, sent=1.2),
        outcome(4, sent=1.3, status=None, code="cut", complete=False, trace_id=None),
        outcome(5, sent=3.0, status=500, code="internal_error", complete=False),
        outcome(6, sent=3.1, trace_id=None),
        outcome(7, sent=3.2),
    ]
    recorded = {"trace-0001": 200, "trace-0003": 200, "trace-0005": 502}
    counts = count(outcomes, recorded, [(fault, window)])
    assert counts.sent == 7
    assert counts.answered == 6
    assert counts.served == 4
    assert counts.not_stored_by_design == 1  # the 503 of a key that could not be checked
    assert counts.to_record == 5
    assert counts.recorded == 3
    assert [o.number for o in counts.lost] == [7]
    assert counts.untraceable == 1
    assert counts.internal_errors == 1
    assert counts.mismatched == {"answered 500, stored 502": 1}
    assert counts.unexpected == {
        "no answer (cut) (during the fault)": 1,
        "500 internal_error (outside the fault)": 1,
    }
    assert counts.answers_during == {"503 service_unavailable": 1, "200": 1, "no answer (cut)": 1}
    assert counts.recovered_after == [3.0 + 0.01 - 2.0]  # the 500 sent at 3.0 s


def test_a_stop_may_leave_a_request_unanswered_only_if_the_gateway_never_handled_it() -> None:
    sigterm = BY_NAME["sigterm"]
    window = Window(start=1.0, end=3.0)
    never_seen = outcome(1, sent=1.5, status=None, code="cut", complete=False)
    handled = outcome(2, sent=1.6, status=None, code="cut", complete=False)
    refused = outcome(3, sent=1.7, status=None, code="refused", complete=False)
    counts = count([never_seen, handled, refused], {}, [(sigterm, window)], {"request-2"})
    assert counts.answers_during == {
        "no answer (cut)": 1,
        "no answer (cut, handled)": 1,
        "no answer (refused)": 1,
    }
    assert counts.unexpected == {"no answer (cut, handled) (during the fault)": 1}
    assert counts.to_record == 0


def test_in_flight_at_a_moment() -> None:
    outcomes = [
        outcome(1, sent=0.0, elapsed=1.0),
        outcome(2, sent=0.5, elapsed=0.1),
        outcome(3, sent=0.9, elapsed=0.5, status=None, code="cut", complete=False),
    ]
    assert in_flight(outcomes, 0.95) == {"200": 1, "no answer (cut)": 1}


def test_upstream_faults_fail_every_other_request_for_good_and_the_rest_once() -> None:
    directive = upstream_directive({"error": 500})
    assert directive("chat", 2) == {"error": 500}
    transient = directive("chat", 3)
    assert transient is not None and transient["fail_first"] == 1
    assert transient["scenario"] != directive("chat", 5)["scenario"]  # type: ignore[index]
    assert BY_NAME["stream-cut"].directive("chat", 1) is None  # type: ignore[misc]


def test_the_log_tells_what_the_recorder_dropped_and_the_spend_a_stop_lost() -> None:
    log = "\n".join(
        [
            "telemetry: 256 bundles could not be written before shutdown; dropped",
            "telemetry: 80 bundles could not be written before shutdown; dropped",
            "telemetry bundle for trace 01ab rejected by the database (DataError); dropped",
            "budget spend of 212 micro-dollars could not be written on close (OSError)",
            "ERROR: unhandled error on /v1/chat/completions (trace 01ab)",
            "Traceback (most recent call last):",
        ]
    )
    assert log_problems(log) == {
        "tracebacks": 1,
        "unhandled": 1,
        "dropped_logged": 337,
        "spend_lost_micros": 212,
    }


def test_a_loss_counts_as_documented_only_for_a_fault_with_a_window_and_up_to_what_was_logged() -> (
    None
):
    lost = [outcome(n) for n in range(5)]
    window = Window(0.0, 1.0)
    for name, logged, outside in (
        ("sigterm-nowhere-to-write", 5, 0),
        ("sigterm-nowhere-to-write", 3, 2),
        ("sigterm", 5, 5),
    ):
        report = FaultReport(
            faults=[BY_NAME[name]],
            store="sqlite",
            counts=count(lost, {}, [(BY_NAME[name], window)]),
            windows=[window],
            dropped_logged=logged,
        )
        assert report.lost == 5
        assert report.lost_outside_window == outside, name


def test_faults_is_a_scenario_with_its_own_options() -> None:
    assert "faults" in ALL_SCENARIOS
    args = build_parser().parse_args(
        [
            "faults",
            "--faults",
            "sigterm,stream-cut",
            "--fault-duration",
            "3",
            "--outage-duration",
            "10",
            "--fault-stores",
            "sqlite,postgres",
            "--fault-rate",
            "50",
        ]
    )
    assert args.faults == ("sigterm", "stream-cut")
    assert (args.fault_duration, args.outage_duration, args.fault_rate) == (3.0, 10.0, 50.0)
    assert args.fault_stores == ("sqlite", "postgres")
    assert len(set(FAULT_NAMES)) == len(FAULT_NAMES)
