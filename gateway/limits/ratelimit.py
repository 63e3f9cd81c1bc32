"""Rate limits: requests per minute, tokens per minute and parallel requests, per key and per
workspace.

Semantics of a per-minute limit L (requests or tokens), the same on both backends:

- It is GCRA: an allowance of L units that refills continuously, one unit every 60 / L seconds
  (rpm 60: one request per second), up to L. A full allowance admits L at once; after that,
  requests are admitted at the refill rate, one per second for rpm 60, never a fresh batch of L
  at a minute boundary. In any window of W seconds at most L + L * W / 60 units pass (the burst
  plus what refills during the window), and L per minute on average over time.
- A request costs 1 request and its estimated tokens (input estimate + maximum output). A request
  whose estimate exceeds the token limit itself is refused as too large (waiting cannot help).
- Max parallel: at most N admitted requests hold a slot at once, until `release` (or until the
  lease TTL runs out, for a worker that never released).
- `acquire` is all-or-nothing across every subject and every limit: a refused request consumes
  nothing. It reports the limit the client must wait longest for, with `retry_after` in seconds
  (for a full parallel limit a fixed one-second guess: a slot frees whenever a request ends).
- `release(decision, actual_tokens)` frees the parallel slots and corrects the token allowance by
  actual - estimated (a refund when lower, a charge when higher), never beyond a full or an
  empty allowance. `actual_tokens=None` keeps the estimate; releasing twice does nothing.
- Headers, OpenAI's way, for each kind the subject with the fewest remaining:
  `x-ratelimit-limit-requests` (L), `x-ratelimit-remaining-requests` (whole requests admissible
  now), `x-ratelimit-reset-requests` (until the allowance is full again: "120ms", "1s", "6m0s"),
  and the same for `-tokens`. A refused decision adds `retry-after` (whole seconds, rounded up).

Time is the `now` the caller passes (epoch seconds, default `time.time()`), also with Redis; see
`gateway.limits.ratelimit_redis` for why, and for what Redis keeps and how it fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.limits.ratelimit_local import InProcessRateLimiter
from gateway.limits.ratelimit_model import (
    LimitState,
    LimitSubject,
    RateDecision,
    RateLimitPolicy,
    RateRefusal,
    format_reset,
    format_reset_ms,
    rate_limit_error,
)
from gateway.limits.ratelimit_redis import RedisRateLimiter

__all__ = [
    "InProcessRateLimiter",
    "LimitState",
    "LimitSubject",
    "RateDecision",
    "RateLimitPolicy",
    "RateLimiter",
    "RateRefusal",
    "RedisRateLimiter",
    "create_rate_limiter",
    "format_reset",
    "format_reset_ms",
    "rate_limit_error",
]


class RateLimiter(Protocol):
    releases_in_place: bool
    """Whether `release` finishes without waiting on anything outside this worker (nothing can
    cancel it halfway, so it needs no shield from the request's cancellation)."""

    async def acquire(
        self, subjects: Sequence[LimitSubject], tokens: int, now: float | None = None
    ) -> RateDecision:
        """Admit a request against every subject's limits, or refuse it consuming nothing."""
        ...

    async def release(
        self, decision: RateDecision, actual_tokens: int | None = None, now: float | None = None
    ) -> None:
        """Free the request's parallel slots and correct its token charge to `actual_tokens`
        (a negative count counts as zero: a release never refunds more than the request was
        charged); never raises."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def create_rate_limiter(
    redis_url: str | None, policy: RateLimitPolicy | None = None
) -> RateLimiter:
    """Limits shared through Redis when a URL is configured, else one worker's in-process view."""
    if redis_url:
        return RedisRateLimiter(redis_url, policy)
    return InProcessRateLimiter(policy)
