"""What a rate-limit check is about and what it answers: subjects, limits, decisions, headers.

Both backends (in-process and Redis) measure the same things with the same integer arithmetic
(`gateway.limits.ratelimit_local`, the Lua in `gateway.limits.ratelimit_redis`) and hand back one `Check` per
limit of each subject; `decide` turns those into a `RateDecision`, so the choice of the refusing
limit and of the subject shown in the headers is made in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import msgspec

from gateway.errors import GatewayError
from telemetry import metrics

Scope = Literal["key", "workspace"]
Kind = Literal["requests", "tokens", "parallel"]
FailurePolicy = Literal["open", "closed"]

SCOPES: tuple[str, ...] = ("key", "workspace")
MAX_LIMIT = 10**10
"""Limits above this are refused at construction: the arithmetic must stay exact in doubles."""

PERIOD_MS = 60_000
"""Both rates are per minute."""

PARALLEL_RETRY_MS = 1_000
"""The wait suggested when every parallel slot is taken: a slot frees when any request ends."""

RATE_LIMIT_ERROR_TYPE = "rate_limit_error"
RATE_LIMIT_ERROR_CODE = "rate_limit_exceeded"
LIMITS_UNAVAILABLE_CODE = "limits_unavailable"


def _check_limit(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer or None, got {value!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{name} must be between 1 and {MAX_LIMIT}, got {value}")


class LimitSubject(msgspec.Struct, frozen=True):
    """One party a request is counted against, with its limits (None: not limited)."""

    scope: Scope
    subject: str
    """The key id or workspace id; it appears in refusal messages, so never a secret."""
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"rate-limit scope must be one of {SCOPES}, got {self.scope!r}")
        if not isinstance(self.subject, str) or not self.subject:
            raise ValueError("rate-limit subject must be a non-empty string")
        _check_limit("rpm", self.rpm)
        _check_limit("tpm", self.tpm)
        _check_limit("max_parallel", self.max_parallel)

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_parallel is not None


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """How the limiter behaves around Redis; the in-process limiter uses only `lease_ttl`."""

    on_redis_error: FailurePolicy = "open"
    """"open": admit and mark the decision degraded; "closed": refuse as unavailable (503)."""
    timeout: float = 0.2
    """Seconds for connecting to Redis and for each reply."""
    lease_ttl: float = 600.0
    """Seconds a parallel slot stays taken without a release (a crashed worker's slots free)."""
    max_connections: int = 64
    """Redis connections one worker may hold; a call waits (within `timeout`) for a free one."""
    key_prefix: str = "steerway:rl"

    def __post_init__(self) -> None:
        if self.on_redis_error not in ("open", "closed"):
            raise ValueError(
                f"on_redis_error must be 'open' or 'closed', got {self.on_redis_error!r}"
            )
        for name in ("timeout", "lease_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"rate-limit {name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"rate-limit {name} must be a positive number of seconds")
        connections = self.max_connections
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise ValueError(f"rate-limit max_connections must be at least 1, got {connections!r}")


class Check(msgspec.Struct):
    """One limit of one subject measured for one request.

    `remaining` and `reset_ms` describe the state after the request when it was admitted, the
    unchanged state when it was refused. `wait_ms` is 0 when this limit would admit it.
    """

    subject: LimitSubject
    kind: Kind
    limit: int
    remaining: int
    reset_ms: int
    wait_ms: int
    too_large: bool = False

    @property
    def passes(self) -> bool:
        return self.wait_ms == 0 and not self.too_large


class LimitState(msgspec.Struct, frozen=True):
    """What the `x-ratelimit-*-<kind>` headers report for one subject."""

    scope: Scope
    subject: str
    limit: int
    remaining: int
    reset_ms: int
    """Milliseconds until the subject's allowance is whole again."""

    @property
    def reset(self) -> float:
        return self.reset_ms / 1000


class RateRefusal(msgspec.Struct, frozen=True):
    """The limit that refused a request."""

    scope: Scope
    subject: str
    kind: Kind
    limit: int
    retry_after: float
    """Seconds until this limit would admit the same request (a guess for `parallel`)."""
    requested: int | None = None
    """Tokens the request asked for (token limits only)."""
    too_large: bool = False
    """The request needs more tokens than the limit allows in a whole minute: waiting won't help."""

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after))

    def message(self) -> str:
        who = f"{self.scope} '{self.subject}'"
        wait = f"Try again in {self.retry_after_seconds} s."
        if self.kind == "parallel":
            return f"Too many parallel requests on {who} (limit {self.limit}). {wait}"
        if self.kind == "requests":
            return (
                f"Rate limit reached for requests per minute on {who} (limit {self.limit}). {wait}"
            )
        if self.too_large:
            return (
                f"Request too large for tokens per minute on {who} (limit {self.limit}, "
                f"requested {self.requested}). Reduce the prompt or max_tokens."
            )
        return (
            f"Rate limit reached for tokens per minute on {who} (limit {self.limit}, "
            f"requested {self.requested}). {wait}"
        )


class Lease(msgspec.Struct):
    """What an admitted request holds until `release`: its parallel slots and token estimate."""

    lease_id: str
    subjects: tuple[LimitSubject, ...]
    estimated_tokens: int
    released: bool = False


class RateDecision(msgspec.Struct, frozen=True):
    """The answer to one `acquire`."""

    allowed: bool
    refusal: RateRefusal | None = None
    requests: LimitState | None = None
    """The tightest subject with a requests-per-minute limit, for the headers."""
    tokens: LimitState | None = None
    """The tightest subject with a tokens-per-minute limit, for the headers."""
    lease: Lease | None = None
    degraded: bool = False
    """Redis failed and the policy is "open": admitted without any check."""
    unavailable: bool = False
    """Redis failed and the policy is "closed": refused; the proxy answers 503."""

    @property
    def retry_after(self) -> float:
        return self.refusal.retry_after if self.refusal is not None else 0.0

    @property
    def retry_after_seconds(self) -> int:
        """The `retry-after` header value: whole seconds, rounded up, at least 1 when refused."""
        return self.refusal.retry_after_seconds if self.refusal is not None else 0

    def headers(self) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers (only the kinds that are limited), plus
        `retry-after` when a limit refused the request."""
        headers: dict[str, str] = {}
        for kind, state in (("requests", self.requests), ("tokens", self.tokens)):
            if state is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(state.limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
                headers[f"x-ratelimit-reset-{kind}"] = format_reset_ms(state.reset_ms)
        if self.refusal is not None:
            headers["retry-after"] = str(self.retry_after_seconds)
        return headers


UNLIMITED = RateDecision(allowed=True)

_rate_limited = metrics.Labelled(metrics.rate_limited_total)


def format_reset_ms(ms: int) -> str:
    """A duration the way OpenAI writes `x-ratelimit-reset-*`: "120ms", "1s", "17.016s", "6m0s"."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}.{millis:03d}".rstrip("0") if millis else str(seconds)
    text += "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def format_reset(seconds: float) -> str:
    """`format_reset_ms` for seconds, rounded up to the millisecond."""
    return format_reset_ms(math.ceil(seconds * 1000 - 1e-6))


def decide(checks: list[Check], tokens: int, lease: Lease | None) -> RateDecision:
    """The decision for a request given every limit's check; `lease` is kept only if admitted.

    The refusal reported is the one the client must wait longest for (a request too large for a
    token limit first, as waiting never helps); ties go to the earlier subject and kind.
    The headers show, per kind, the subject with the fewest remaining (ties: the later reset).
    A refusal is counted in `steerway_rate_limited_total`.
    """
    refusing: Check | None = None
    requests: Check | None = None
    token_state: Check | None = None
    for check in checks:
        if not check.passes and (
            refusing is None
            or (check.too_large and not refusing.too_large)
            or (check.too_large == refusing.too_large and check.wait_ms > refusing.wait_ms)
        ):
            refusing = check
        if check.kind == "requests" and (requests is None or _tighter(check, requests)):
            requests = check
        elif check.kind == "tokens" and (token_state is None or _tighter(check, token_state)):
            token_state = check
    refusal = None
    if refusing is not None:
        refusal = RateRefusal(
            scope=refusing.subject.scope,
            subject=refusing.subject.subject,
            kind=refusing.kind,
            limit=refusing.limit,
            retry_after=refusing.wait_ms / 1000,
            requested=tokens if refusing.kind == "tokens" else None,
            too_large=refusing.too_large,
        )
        _rate_limited(refusal.scope, refusal.kind).inc()
    return RateDecision(
        allowed=refusal is None,
        refusal=refusal,
        requests=_state(requests),
        tokens=_state(token_state),
        lease=lease if refusal is None else None,
    )


def _tighter(check: Check, best: Check) -> bool:
    return (check.remaining, -check.reset_ms) < (best.remaining, -best.reset_ms)


def _state(check: Check | None) -> LimitState | None:
    if check is None:
        return None
    return LimitState(
        scope=check.subject.scope,
        subject=check.subject.subject,
        limit=check.limit,
        remaining=check.remaining,
        reset_ms=check.reset_ms,
    )


def rate_limit_error(decision: RateDecision) -> GatewayError | None:
    """The OpenAI-shaped error for a refused decision (429, or 503 when limits are unavailable);
    None when the request was admitted."""
    if decision.unavailable:
        return GatewayError(
            503,
            "Rate limits cannot be checked right now. Try again shortly.",
            type="server_error",
            code=LIMITS_UNAVAILABLE_CODE,
        )
    if decision.refusal is None:
        return None
    return GatewayError(
        429,
        decision.refusal.message(),
        type=RATE_LIMIT_ERROR_TYPE,
        code=RATE_LIMIT_ERROR_CODE,
        headers=decision.headers(),
    )
