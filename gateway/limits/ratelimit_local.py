"""The rate limiter of one worker, held in dicts.

`acquire` never awaits: the check and the commit happen in one step of the event loop, so
concurrent requests of the same worker cannot both take the last unit.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.limits import ratelimit_gcra as gcra
from gateway.limits.ratelimit_model import (
    UNLIMITED,
    Check,
    Lease,
    LimitSubject,
    RateDecision,
    RateLimitPolicy,
    decide,
)

Clock = Callable[[], float]


@dataclass(slots=True)
class _SubjectState:
    request_debt: int = 0
    request_updated_ms: int = 0
    token_debt: int = 0
    token_updated_ms: int = 0
    leases: dict[str, int] = field(default_factory=dict)
    """Lease id -> the millisecond its slot frees by itself."""
    next_expiry_ms: float = math.inf
    """No lease expires before this (a lower bound: releases do not raise it)."""

    def in_flight(self, slots: int, now_ms: int) -> int:
        """Slots taken; expired leases are dropped only when they could matter (at the limit)."""
        if len(self.leases) >= slots and self.next_expiry_ms <= now_ms:
            self.leases = {lease: ends for lease, ends in self.leases.items() if ends > now_ms}
            self.next_expiry_ms = min(self.leases.values(), default=math.inf)
        return len(self.leases)

    def hold(self, lease_id: str, ends_ms: int) -> None:
        self.leases[lease_id] = ends_ms
        self.next_expiry_ms = min(self.next_expiry_ms, ends_ms)


def to_ms(now: float) -> int:
    return round(now * 1000)


def checked(subjects: Sequence[LimitSubject], tokens: int) -> list[LimitSubject]:
    """The subjects that carry a limit; rejects what a caller must never pass."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError(f"tokens must be a non-negative integer, got {tokens!r}")
    limited = [subject for subject in subjects if subject.limited]
    if len(limited) > 1 and len({(s.scope, s.subject) for s in limited}) != len(limited):
        raise ValueError("each (scope, subject) may appear only once in one acquire")
    return limited


class LeaseIds:
    """Lease ids unique across workers sharing a Redis: a random prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}:{next(self._counter)}"


class InProcessRateLimiter:
    """Limits for one worker: exact within the worker, blind to every other worker."""

    releases_in_place = True

    def __init__(self, policy: RateLimitPolicy | None = None, *, clock: Clock = time.time) -> None:
        self._policy = policy or RateLimitPolicy()
        self._lease_ttl_ms = max(1, round(self._policy.lease_ttl * 1000))
        self._clock = clock
        self._states: dict[tuple[str, str], _SubjectState] = {}
        self._lease_ids = LeaseIds()

    async def acquire(
        self, subjects: Sequence[LimitSubject], tokens: int, now: float | None = None
    ) -> RateDecision:
        limited = checked(subjects, tokens)
        if not limited:
            return UNLIMITED
        now_ms = to_ms(self._clock() if now is None else now)
        measured = []
        admitted = True
        for subject in limited:
            state = self._state(subject)
            current = self._measure(subject, state, now_ms)
            admitted = admitted and gcra.admits(subject, tokens, *current)
            measured.append((subject, state, current))
        if not admitted:
            refused: list[Check] = []
            for subject, _, current in measured:
                refused += gcra.subject_checks(subject, tokens, *current, admitted=False)
            return decide(refused, tokens, None)

        lease = Lease(self._lease_ids(), tuple(limited), tokens)
        checks: list[Check] = []
        for subject, state, (request_debt, token_debt, _) in measured:
            if subject.rpm is not None:
                state.request_debt = gcra.corrected(request_debt, 1, subject.rpm)
                state.request_updated_ms = now_ms
            if subject.tpm is not None:
                state.token_debt = gcra.corrected(token_debt, tokens, subject.tpm)
                state.token_updated_ms = now_ms
            if subject.max_parallel is not None:
                state.hold(lease.lease_id, now_ms + self._lease_ttl_ms)
            checks += gcra.subject_checks(
                subject,
                tokens,
                state.request_debt,
                state.token_debt,
                len(state.leases),
                admitted=True,
            )
        return decide(checks, tokens, lease)

    async def release(
        self, decision: RateDecision, actual_tokens: int | None = None, now: float | None = None
    ) -> None:
        lease = decision.lease
        if lease is None or lease.released:
            return
        lease.released = True
        now_ms = to_ms(self._clock() if now is None else now)
        delta = 0 if actual_tokens is None else max(actual_tokens, 0) - lease.estimated_tokens
        for subject in lease.subjects:
            state = self._states.get((subject.scope, subject.subject))
            if state is None:
                continue
            state.leases.pop(lease.lease_id, None)
            if delta and subject.tpm is not None:
                debt = gcra.debt_at(state.token_debt, state.token_updated_ms, subject.tpm, now_ms)
                state.token_debt = gcra.corrected(debt, delta, subject.tpm)
                state.token_updated_ms = now_ms

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _state(self, subject: LimitSubject) -> _SubjectState:
        key = (subject.scope, subject.subject)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _SubjectState()
        return state

    @staticmethod
    def _measure(subject: LimitSubject, state: _SubjectState, now_ms: int) -> tuple[int, int, int]:
        request_debt = token_debt = in_flight = 0
        if subject.rpm is not None:
            request_debt = gcra.debt_at(
                state.request_debt, state.request_updated_ms, subject.rpm, now_ms
            )
        if subject.tpm is not None:
            token_debt = gcra.debt_at(state.token_debt, state.token_updated_ms, subject.tpm, now_ms)
        if subject.max_parallel is not None:
            in_flight = state.in_flight(subject.max_parallel, now_ms)
        return request_debt, token_debt, in_flight
