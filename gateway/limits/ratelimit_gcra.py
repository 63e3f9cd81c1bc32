"""The GCRA arithmetic, in integers, shared by the in-process limiter (the Lua script repeats it).

A limit of L per minute is kept as a *debt*: the units (requests or tokens) still outstanding,
multiplied by `PERIOD_MS` (60,000), together with the millisecond it was last updated. Every
millisecond repays L, so one unit is repaid in 60,000 / L ms (the emission interval), and the
debt may never exceed `PERIOD_MS * L` (the burst: a whole minute's worth). This is GCRA's
theoretical arrival time (TAT = updated + debt / L) written so that every quantity is an integer
below 2**53: exact in Python and in Redis' Lua alike, whatever L is (up to `MAX_LIMIT`).
"""

from __future__ import annotations

from gateway.limits.ratelimit_model import PARALLEL_RETRY_MS, PERIOD_MS, Check, LimitSubject


def debt_at(debt: int, updated_ms: int, limit: int, now_ms: int) -> int:
    """The debt at `now_ms`.

    A stored debt above the burst (the limit was lowered since) counts as a whole burst. Read by
    a clock behind the writer's (`now_ms < updated_ms`), the gap counts as more debt: the state
    is a theoretical arrival time, the same whichever clock reads it. A state written more than
    a minute in the reader's future came from a clock that is badly wrong; it is ignored (a full
    allowance) rather than locking the subject out until that time.
    """
    elapsed = now_ms - updated_ms
    if elapsed < -PERIOD_MS:
        return 0
    return max(0, min(debt, PERIOD_MS * limit) - elapsed * limit)


def wait_ms(debt: int, cost: int, limit: int) -> int:
    """Milliseconds until `cost` more units fit (0: they fit now)."""
    over = debt + cost * PERIOD_MS - PERIOD_MS * limit
    return 0 if over <= 0 else -(-over // limit)


def remaining(debt: int, limit: int) -> int:
    """Whole units that would be admitted right now."""
    return max(0, (PERIOD_MS * limit - debt) // PERIOD_MS)


def reset_ms(debt: int, limit: int) -> int:
    """Milliseconds until the debt is repaid (the whole burst is available again)."""
    return -(-debt // limit)


def corrected(debt: int, delta_units: int, limit: int) -> int:
    """The debt after charging `delta_units` more (or refunding, when negative): never below
    zero (a full allowance) nor above the burst (an empty one)."""
    return min(PERIOD_MS * limit, max(0, debt + delta_units * PERIOD_MS))


def admits(
    subject: LimitSubject, tokens: int, request_debt: int, token_debt: int, in_flight: int
) -> bool:
    """Whether every limit of the subject admits the request (what `subject_checks` says, cheaply)."""
    if subject.rpm is not None and request_debt + PERIOD_MS > PERIOD_MS * subject.rpm:
        return False
    if subject.tpm is not None and (
        tokens > subject.tpm or token_debt + tokens * PERIOD_MS > PERIOD_MS * subject.tpm
    ):
        return False
    return subject.max_parallel is None or in_flight < subject.max_parallel


def subject_checks(
    subject: LimitSubject,
    tokens: int,
    request_debt: int,
    token_debt: int,
    in_flight: int,
    admitted: bool,
) -> list[Check]:
    """The checks of one subject's limits.

    Before admission (`admitted` False) the debts and `in_flight` are the current state and the
    checks say whether each limit admits the request. After admission they are the state with the
    request counted, and every check passes.
    """
    checks: list[Check] = []
    if subject.rpm is not None:
        rpm = subject.rpm
        checks.append(
            Check(
                subject,
                "requests",
                rpm,
                remaining(request_debt, rpm),
                reset_ms(request_debt, rpm),
                0 if admitted else wait_ms(request_debt, 1, rpm),
            )
        )
    if subject.tpm is not None:
        tpm = subject.tpm
        too_large = not admitted and tokens > tpm
        if admitted:
            wait = 0
        elif too_large:
            wait = reset_ms(token_debt, tpm)
        else:
            wait = wait_ms(token_debt, tokens, tpm)
        checks.append(
            Check(
                subject,
                "tokens",
                tpm,
                remaining(token_debt, tpm),
                reset_ms(token_debt, tpm),
                wait,
                too_large,
            )
        )
    if subject.max_parallel is not None:
        slots = subject.max_parallel
        full = not admitted and in_flight >= slots
        checks.append(
            Check(
                subject,
                "parallel",
                slots,
                max(0, slots - in_flight),
                0,
                PARALLEL_RETRY_MS if full else 0,
            )
        )
    return checks
