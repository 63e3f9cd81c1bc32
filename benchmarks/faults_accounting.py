"""Counting one fault's requests: sent, answered, served, recorded, lost, and answers that the
documentation does not allow.

An answer is to be recorded when the gateway accepted its key: every answer except the 503
`service_unavailable` of a key that could not be checked while the database was away (refused
before a key was accepted: counted in metrics, not stored one by one; operations.md). Such an
answer is lost when no trace row carries the `x-steerway-trace-id` it came with, once the gateway
has stopped cleanly and replayed its spill files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from benchmarks.faults_catalog import Fault
from benchmarks.faults_load import Outcome

NOT_STORED_BY_DESIGN: Final = frozenset({(503, "service_unavailable")})
"""Answers refused before a key was accepted (operations.md: counted, not stored)."""
GATEWAY_FAILURE: Final = (500, "internal_error")


@dataclass(frozen=True)
class Window:
    """When the fault was on, on the load's clock; `settle` seconds after its end still count as
    during it (a cooldown or a key cache catching up)."""

    start: float
    end: float
    settle: float = 5.0

    def during(self, outcome: Outcome) -> bool:
        """Whether the request was in flight at some moment of the fault (or its settling)."""
        return (
            outcome.sent < self.end + self.settle and outcome.sent + outcome.elapsed >= self.start
        )


@dataclass
class FaultCounts:
    sent: int = 0
    answered: int = 0
    served: int = 0
    """Whole 2xx answers."""
    to_record: int = 0
    recorded: int = 0
    not_stored_by_design: int = 0
    lost: list[Outcome] = field(default_factory=list)
    """Answers to be recorded whose trace id has no row."""
    untraceable: int = 0
    """Answers to be recorded that carried no trace id (nothing to look for)."""
    internal_errors: int = 0
    answers_during: Counter[str] = field(default_factory=Counter)
    answers_outside: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    mismatched: Counter[str] = field(default_factory=Counter)
    """Recorded with another status than the client got: `answered 200, stored 502`."""
    recovered_after: list[float] = field(default_factory=list)
    """For each fault, seconds from its end to the end of the last request sent after it that
    was not a whole 2xx answer (0: every answer after the end was whole)."""


def label(outcome: Outcome, processed: bool = False) -> str:
    """`processed`: a request without an answer that the gateway handled nonetheless."""
    if outcome.status is None:
        return f"no answer ({outcome.code}{', handled' if processed else ''})"
    text = str(outcome.status)
    if outcome.code is not None:
        text += f" {outcome.code}"
    if 200 <= outcome.status < 300 and not outcome.complete:
        text += " incomplete"
    return text


def to_be_recorded(outcome: Outcome) -> bool:
    return outcome.status is not None and (outcome.status, outcome.code) not in (
        NOT_STORED_BY_DESIGN
    )


def expected(outcome: Outcome, fault: Fault | None) -> bool:
    """Whether the documentation allows this answer while `fault` lasts (None: no fault)."""
    if outcome.status is not None and 200 <= outcome.status < 300 and outcome.complete:
        return True
    if fault is None:
        return False
    if (outcome.status, outcome.code) in fault.allowed:
        return fault.refusable is None or fault.refusable(outcome)
    return (
        fault.incomplete_streams
        and outcome.kind == "stream"
        and outcome.status is not None
        and 200 <= outcome.status < 300
    )


def count(
    outcomes: Iterable[Outcome],
    recorded: Mapping[str, int | None],
    periods: list[tuple[Fault, Window]],
    handled: Collection[str] = (),
) -> FaultCounts:
    """Count what became of every request; `periods` are the faults applied and when;
    `handled`: request ids with a trace row, so a request that got no answer but was handled
    (its answer lost on the way) is told from one the gateway never saw."""
    counts = FaultCounts(recovered_after=[0.0] * len(periods))
    ends = [window.end for _, window in periods]
    for outcome in outcomes:
        counts.sent += 1
        whole = outcome.status is not None and 200 <= outcome.status < 300 and outcome.complete
        after = [i for i, end in enumerate(ends) if end <= outcome.sent]
        if not whole and after:
            latest = after[-1]
            finished = outcome.sent + outcome.elapsed - ends[latest]
            counts.recovered_after[latest] = max(counts.recovered_after[latest], finished)
        fault = next((fault for fault, window in periods if window.during(outcome)), None)
        during = fault is not None
        unanswered_but_handled = outcome.status is None and outcome.request_id in handled
        name = label(outcome, unanswered_but_handled)
        (counts.answers_during if during else counts.answers_outside)[name] += 1
        if unanswered_but_handled or not expected(outcome, fault):
            counts.unexpected[f"{name} ({'during' if during else 'outside'} the fault)"] += 1
        if outcome.status is None:
            continue
        counts.answered += 1
        if 200 <= outcome.status < 300 and outcome.complete:
            counts.served += 1
        if (outcome.status, outcome.code) == GATEWAY_FAILURE:
            counts.internal_errors += 1
        if not to_be_recorded(outcome):
            counts.not_stored_by_design += 1
            continue
        counts.to_record += 1
        if outcome.trace_id is None:
            counts.untraceable += 1
            continue
        if outcome.trace_id not in recorded:
            counts.lost.append(outcome)
            continue
        counts.recorded += 1
        stored = recorded[outcome.trace_id]
        if stored != outcome.status:
            counts.mismatched[f"answered {outcome.status}, stored {stored}"] += 1
    return counts


def in_flight(outcomes: Iterable[Outcome], moment: float) -> Counter[str]:
    """What became of the requests sent before `moment` and not yet answered by then."""
    return Counter(
        label(outcome)
        for outcome in outcomes
        if outcome.sent <= moment < outcome.sent + outcome.elapsed
    )


def describe(answers: Counter[str]) -> str:
    return ", ".join(f"{name}: {number:,}" for name, number in answers.most_common()) or "none"
