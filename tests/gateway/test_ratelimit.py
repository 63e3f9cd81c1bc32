"""Rate limits (GCRA rpm/tpm, max parallel) on the in-process limiter and through a real Redis.

Every test drives `now` explicitly, so both backends see the same times and nothing depends on
how fast the test runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
import pytest
from prometheus_client import REGISTRY

from gateway.limits.ratelimit import (
    InProcessRateLimiter,
    LimitSubject,
    RateDecision,
    RateLimiter,
    RateLimitPolicy,
    RedisRateLimiter,
    create_rate_limiter,
    format_reset,
    rate_limit_error,
)

T0 = 1_700_000_000.0


@dataclass
class Backend:
    name: str
    make: Callable[..., RateLimiter]

    async def limiter(self, policy: RateLimitPolicy | None = None) -> RateLimiter:
        limiter = self.make(policy)
        await limiter.start()
        return limiter

    async def workers(self, policy: RateLimitPolicy | None = None) -> tuple[RateLimiter, ...]:
        """Two workers sharing state: two limiters over one Redis; in-process, one limiter twice
        (a worker's limiter is all the state it has)."""
        first = await self.limiter(policy)
        if self.name == "in-process":
            return first, first
        return first, await self.limiter(policy)


@pytest.fixture(params=["in-process", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    made: list[RateLimiter] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")

        def make(policy: RateLimitPolicy | None = None) -> RateLimiter:
            made.append(RedisRateLimiter(url, policy))
            return made[-1]
    else:

        def make(policy: RateLimitPolicy | None = None) -> RateLimiter:
            made.append(InProcessRateLimiter(policy))
            return made[-1]

    yield Backend(request.param, make)
    for limiter in made:
        await limiter.close()


@pytest.fixture
async def limiter(backend: Backend) -> RateLimiter:
    return await backend.limiter()


async def admitted(
    limiter: RateLimiter, subjects: list[LimitSubject], times: int, now: float, tokens: int = 0
) -> list[RateDecision]:
    decisions = [await limiter.acquire(subjects, tokens, now) for _ in range(times)]
    return [decision for decision in decisions if decision.allowed]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- requests per minute -------------------------------------------------------------------------


async def test_rpm_admits_the_burst_then_one_per_interval_with_no_boundary_burst(
    limiter: RateLimiter,
) -> None:
    key = [LimitSubject("key", "k1", rpm=60)]
    first = [(await limiter.acquire(key, 0, T0)).allowed for _ in range(61)]
    assert first == [True] * 60 + [False]

    times: list[float] = []
    for step in range(1, 481):
        now = T0 + step * 0.25
        while (await limiter.acquire(key, 0, now)).allowed:
            times.append(now)
    # Two minutes after the burst, including the minute boundary at T0 + 60: one per second.
    assert times == [T0 + second for second in range(1, 121)]


async def test_a_refusal_says_how_long_to_wait_and_that_wait_is_enough(
    limiter: RateLimiter,
) -> None:
    key = [LimitSubject("key", "k1", rpm=3)]
    assert len(await admitted(limiter, key, 3, T0)) == 3
    refused = await limiter.acquire(key, 0, T0 + 5)
    assert not refused.allowed
    assert refused.retry_after == 15.0
    assert refused.retry_after_seconds == 15
    assert refused.refusal is not None
    assert (refused.refusal.scope, refused.refusal.subject) == ("key", "k1")
    assert (refused.refusal.kind, refused.refusal.limit) == ("requests", 3)
    assert not (await limiter.acquire(key, 0, T0 + 19.999)).allowed
    assert (await limiter.acquire(key, 0, T0 + 20)).allowed

    odd = [LimitSubject("key", "k2", rpm=7)]
    assert len(await admitted(limiter, odd, 8, T0)) == 7
    refused = await limiter.acquire(odd, 0, T0)
    assert refused.retry_after == 8.572  # 60 / 7 s, rounded up to the millisecond
    assert refused.retry_after_seconds == 9
    assert not (await limiter.acquire(odd, 0, T0 + 8.571)).allowed
    assert (await limiter.acquire(odd, 0, T0 + 8.572)).allowed


async def test_an_idle_minute_refills_the_burst_and_no_more(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", rpm=5)]
    assert len(await admitted(limiter, key, 6, T0)) == 5
    assert len(await admitted(limiter, key, 10, T0 + 30)) == 2
    assert len(await admitted(limiter, key, 10, T0 + 90)) == 5
    assert len(await admitted(limiter, key, 10, T0 + 3600)) == 5


async def test_a_lowered_limit_counts_at_most_its_own_burst(limiter: RateLimiter) -> None:
    assert len(await admitted(limiter, [LimitSubject("key", "k1", rpm=10)], 10, T0)) == 10
    lowered = [LimitSubject("key", "k1", rpm=2)]
    refused = await limiter.acquire(lowered, 0, T0)
    assert refused.retry_after == 30.0
    assert (await limiter.acquire(lowered, 0, T0 + 30)).allowed


# --- tokens per minute ---------------------------------------------------------------------------


async def test_tpm_charges_the_estimate_and_release_corrects_it(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", tpm=1000)]
    first = await limiter.acquire(key, 400, T0)
    second = await limiter.acquire(key, 400, T0)
    assert first.allowed and second.allowed
    assert second.headers()["x-ratelimit-remaining-tokens"] == "200"

    refused = await limiter.acquire(key, 400, T0)
    assert refused.refusal is not None
    assert (refused.refusal.kind, refused.refusal.limit, refused.refusal.requested) == (
        "tokens",
        1000,
        400,
    )
    assert refused.retry_after == 12.0  # 200 tokens short at 1000 per 60 s

    await limiter.release(first, actual_tokens=100, now=T0)  # 300 back
    third = await limiter.acquire(key, 400, T0)
    assert third.allowed
    assert third.headers()["x-ratelimit-remaining-tokens"] == "100"

    await limiter.release(first, actual_tokens=0, now=T0)  # released already: nothing changes
    assert not (await limiter.acquire(key, 101, T0)).allowed

    await limiter.release(second, actual_tokens=900, now=T0)  # 500 more, but never below empty
    refused = await limiter.acquire(key, 1, T0)
    assert refused.retry_after == 0.06
    headers = refused.headers()
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-tokens"] == "1m0s"

    await limiter.release(third, actual_tokens=None, now=T0)  # None keeps the estimate
    assert (await limiter.acquire(key, 10, T0 + 0.6)).allowed
    assert not (await limiter.acquire(key, 1, T0 + 0.6)).allowed


async def test_a_refund_never_makes_more_than_a_full_allowance(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", tpm=1000)]
    decision = await limiter.acquire(key, 500, T0)
    await limiter.release(decision, actual_tokens=0, now=T0 + 60)
    assert len(await admitted(limiter, key, 3, T0 + 60, tokens=500)) == 2


async def test_a_negative_token_count_at_release_refunds_no_more_than_the_charge(
    limiter: RateLimiter,
) -> None:
    """A provider reporting negative usage must not give back other requests' tokens."""
    key = [LimitSubject("key", "k1", tpm=1000)]
    others = await limiter.acquire(key, 600, T0)
    assert others.allowed
    mine = await limiter.acquire(key, 300, T0)
    assert mine.headers()["x-ratelimit-remaining-tokens"] == "100"
    await limiter.release(mine, actual_tokens=-1_000_000, now=T0)  # counted as 0: 300 back
    after = await limiter.acquire(key, 400, T0)
    assert after.allowed
    assert after.headers()["x-ratelimit-remaining-tokens"] == "0"  # the 600 are still counted
    assert not (await limiter.acquire(key, 1, T0)).allowed


async def test_a_request_larger_than_the_token_limit_is_refused_as_too_large(
    limiter: RateLimiter,
) -> None:
    key = [LimitSubject("key", "k1", rpm=10, tpm=1000)]
    refused = await limiter.acquire(key, 1001, T0)
    assert refused.refusal is not None
    assert refused.refusal.too_large
    assert refused.refusal.message() == (
        "Request too large for tokens per minute on key 'k1' (limit 1000, requested 1001). "
        "Reduce the prompt or max_tokens."
    )
    whole = await limiter.acquire(key, 1000, T0)
    assert whole.allowed
    assert whole.headers()["x-ratelimit-remaining-requests"] == "9"


# --- max parallel --------------------------------------------------------------------------------


async def test_max_parallel_holds_slots_until_release(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", max_parallel=2)]
    first = await limiter.acquire(key, 0, T0)
    second = await limiter.acquire(key, 0, T0)
    assert first.allowed and second.allowed
    assert first.headers() == {}
    refused = await limiter.acquire(key, 0, T0)
    assert refused.refusal is not None
    assert (refused.refusal.kind, refused.refusal.limit) == ("parallel", 2)
    assert refused.retry_after == 1.0
    assert refused.refusal.message() == (
        "Too many parallel requests on key 'k1' (limit 2). Try again in 1 s."
    )

    await limiter.release(first, now=T0)
    third = await limiter.acquire(key, 0, T0)
    assert third.allowed
    await limiter.release(first, now=T0)  # a second release frees nothing
    assert not (await limiter.acquire(key, 0, T0)).allowed

    await limiter.release(second, now=T0)
    await limiter.release(third, now=T0)
    assert len(await admitted(limiter, key, 3, T0)) == 2


async def test_a_lease_nobody_releases_frees_its_slot_after_the_ttl(backend: Backend) -> None:
    limiter = await backend.limiter(RateLimitPolicy(lease_ttl=30))
    key = [LimitSubject("key", "k1", max_parallel=1)]
    forgotten = await limiter.acquire(key, 0, T0)
    assert forgotten.allowed
    assert not (await limiter.acquire(key, 0, T0 + 29.999)).allowed
    later = await limiter.acquire(key, 0, T0 + 30)
    assert later.allowed
    await limiter.release(forgotten, now=T0 + 31)  # late: must not free the slot `later` holds
    assert not (await limiter.acquire(key, 0, T0 + 31)).allowed
    await limiter.release(later, now=T0 + 31)
    assert (await limiter.acquire(key, 0, T0 + 31)).allowed


# --- all or nothing ------------------------------------------------------------------------------


async def test_a_refusal_by_the_workspace_consumes_nothing_of_the_key(
    limiter: RateLimiter,
) -> None:
    key = LimitSubject("key", "k1", rpm=10, tpm=1000)
    workspace = LimitSubject("workspace", "w1", rpm=3)
    assert len(await admitted(limiter, [key, workspace], 5, T0, tokens=100)) == 3
    refused = await limiter.acquire([key, workspace], 100, T0)
    assert refused.refusal is not None
    assert (refused.refusal.scope, refused.refusal.subject) == ("workspace", "w1")
    alone = await limiter.acquire([key], 100, T0)
    assert alone.headers()["x-ratelimit-remaining-requests"] == "6"
    assert alone.headers()["x-ratelimit-remaining-tokens"] == "600"


async def test_a_refusal_by_one_limit_consumes_nothing_of_the_others(
    limiter: RateLimiter,
) -> None:
    by_tokens = [LimitSubject("key", "k1", rpm=2, tpm=100)]
    assert (await limiter.acquire(by_tokens, 100, T0)).allowed
    assert (await limiter.acquire(by_tokens, 50, T0)).refusal.kind == "tokens"  # type: ignore[union-attr]
    last = await limiter.acquire(by_tokens, 0, T0)
    assert last.allowed
    assert last.headers()["x-ratelimit-remaining-requests"] == "0"

    by_slots = LimitSubject("key", "k2", rpm=10, tpm=1000, max_parallel=1)
    workspace = LimitSubject("workspace", "w2", rpm=10, max_parallel=1)
    held = await limiter.acquire([by_slots, workspace], 300, T0)
    refused = await limiter.acquire([by_slots, workspace], 300, T0)
    assert refused.refusal is not None
    assert refused.refusal.kind == "parallel"
    assert refused.lease is None
    await limiter.release(held, now=T0)
    after = await limiter.acquire([by_slots, workspace], 300, T0)
    assert after.headers()["x-ratelimit-remaining-requests"] == "8"
    assert after.headers()["x-ratelimit-remaining-tokens"] == "400"


async def test_the_refusal_reported_is_the_longest_wait(limiter: RateLimiter) -> None:
    key = LimitSubject("key", "k1", rpm=1)
    workspace = LimitSubject("workspace", "w1", rpm=2)
    assert (await limiter.acquire([key, workspace], 0, T0)).allowed
    assert (await limiter.acquire([workspace], 0, T0)).allowed
    refused = await limiter.acquire([workspace, key], 0, T0 + 10)
    assert refused.refusal is not None
    assert refused.refusal.scope == "key"
    assert refused.retry_after == 50.0


# --- headers -------------------------------------------------------------------------------------


async def test_headers_report_limit_remaining_and_reset_openai_style(
    limiter: RateLimiter,
) -> None:
    decision = await limiter.acquire([LimitSubject("key", "k1", rpm=60, tpm=6000)], 100, T0)
    assert decision.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5900",
        "x-ratelimit-reset-tokens": "1s",
    }
    resets = {
        "k2": (LimitSubject("key", "k2", rpm=1), 0, "x-ratelimit-reset-requests", "1m0s"),
        "k3": (LimitSubject("key", "k3", rpm=7), 0, "x-ratelimit-reset-requests", "8.572s"),
        "k4": (LimitSubject("key", "k4", tpm=100_000), 10, "x-ratelimit-reset-tokens", "6ms"),
        "k5": (LimitSubject("key", "k5", tpm=1000), 1000, "x-ratelimit-reset-tokens", "1m0s"),
        "k6": (LimitSubject("key", "k6", tpm=1000), 0, "x-ratelimit-reset-tokens", "0s"),
    }
    for subject, tokens, header, expected in resets.values():
        assert (await limiter.acquire([subject], tokens, T0)).headers()[header] == expected


async def test_headers_show_the_tightest_subject_per_kind(limiter: RateLimiter) -> None:
    key = LimitSubject("key", "k1", rpm=100, tpm=10_000)
    workspace = LimitSubject("workspace", "w1", rpm=10)
    headers = (await limiter.acquire([key, workspace], 50, T0)).headers()
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "9"
    assert headers["x-ratelimit-reset-requests"] == "6s"
    assert headers["x-ratelimit-limit-tokens"] == "10000"
    assert headers["x-ratelimit-remaining-tokens"] == "9950"

    assert len(await admitted(limiter, [key], 94, T0)) == 94
    headers = (await limiter.acquire([key, workspace], 0, T0)).headers()
    assert headers["x-ratelimit-limit-requests"] == "100"
    assert headers["x-ratelimit-remaining-requests"] == "4"


async def test_a_refused_decision_carries_retry_after_and_the_state(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", rpm=2)]
    await admitted(limiter, key, 2, T0)
    assert (await limiter.acquire(key, 0, T0 + 0.5)).headers() == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "59.5s",
        "retry-after": "30",
    }


async def test_no_limit_means_no_headers_and_nothing_to_release(limiter: RateLimiter) -> None:
    for subjects in ([], [LimitSubject("key", "k1"), LimitSubject("workspace", "w1")]):
        decision = await limiter.acquire(subjects, 10_000, T0)
        assert decision.allowed
        assert decision.headers() == {}
        assert decision.lease is None
        await limiter.release(decision, actual_tokens=5)


def test_reset_durations_are_written_like_openai() -> None:
    cases = {
        0: "0s",
        0.0004: "1ms",
        0.12: "120ms",
        1: "1s",
        17.016: "17.016s",
        59.5: "59.5s",
        90.5: "1m30.5s",
        360: "6m0s",
        3600: "1h0m0s",
        3723.25: "1h2m3.25s",
    }
    assert {seconds: format_reset(seconds) for seconds in cases} == cases


# --- messages, errors, metrics -------------------------------------------------------------------


async def test_a_refusal_becomes_an_openai_429(limiter: RateLimiter) -> None:
    key = [LimitSubject("key", "k1", rpm=60)]
    await admitted(limiter, key, 60, T0)
    refused = await limiter.acquire(key, 0, T0 + 0.2)
    error = rate_limit_error(refused)
    assert error is not None
    assert error.status == 429
    assert msgspec.json.decode(error.body()) == {
        "error": {
            "message": "Rate limit reached for requests per minute on key 'k1' (limit 60). "
            "Try again in 1 s.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert error.headers["retry-after"] == "1"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert rate_limit_error(await limiter.acquire(key, 0, T0 + 1)) is None

    tokens = [LimitSubject("workspace", "w1", tpm=600)]
    await limiter.acquire(tokens, 600, T0)
    refused = await limiter.acquire(tokens, 25, T0)
    assert refused.refusal is not None
    assert refused.refusal.message() == (
        "Rate limit reached for tokens per minute on workspace 'w1' (limit 600, requested 25). "
        "Try again in 3 s."
    )


async def test_refusals_are_counted_by_scope_and_kind(limiter: RateLimiter) -> None:
    before = sample("steerway_rate_limited_total", scope="workspace", kind="tokens")
    workspace = [LimitSubject("workspace", "w1", tpm=10)]
    await limiter.acquire(workspace, 10, T0)
    await limiter.acquire(workspace, 10, T0)
    await limiter.acquire(workspace, 10, T0)
    assert sample("steerway_rate_limited_total", scope="workspace", kind="tokens") == before + 2


# --- several workers, clocks ---------------------------------------------------------------------


# A generous timeout: these tests are about atomicity, and a call that timed out would be
# admitted under the "open" policy.
PATIENT = RateLimitPolicy(timeout=5.0)


async def test_two_workers_hammered_admit_exactly_the_limit(backend: Backend) -> None:
    first, second = await backend.workers(PATIENT)
    key = LimitSubject("key", "k1", rpm=100)
    workspace = LimitSubject("workspace", "w1", tpm=5000)
    decisions = await asyncio.gather(
        *(
            (first if index % 2 else second).acquire([key, workspace], 10, T0)
            for index in range(300)
        )
    )
    assert not any(decision.degraded for decision in decisions)
    assert sum(decision.allowed for decision in decisions) == 100
    refused = [decision for decision in decisions if not decision.allowed]
    assert all(decision.refusal.kind == "requests" for decision in refused)  # type: ignore[union-attr]

    tokens = [LimitSubject("key", "k2", tpm=1000)]
    decisions = await asyncio.gather(
        *((first if index % 2 else second).acquire(tokens, 7, T0) for index in range(300))
    )
    assert sum(decision.allowed for decision in decisions) == 142


async def test_two_workers_share_parallel_slots(backend: Backend) -> None:
    first, second = await backend.workers(PATIENT)
    key = [LimitSubject("key", "k1", max_parallel=7)]
    decisions = await asyncio.gather(
        *((first if index % 2 else second).acquire(key, 0, T0) for index in range(60))
    )
    held = [decision for decision in decisions if decision.allowed]
    assert len(held) == 7
    await asyncio.gather(*(second.release(decision, now=T0) for decision in held))
    decisions = await asyncio.gather(
        *((first if index % 2 else second).acquire(key, 0, T0) for index in range(60))
    )
    assert sum(decision.allowed for decision in decisions) == 7


async def test_workers_with_skewed_clocks_do_not_multiply_the_rate(backend: Backend) -> None:
    ahead, behind = await backend.workers()
    key = [LimitSubject("key", "k1", rpm=60)]
    assert len(await admitted(ahead, key, 60, T0)) == 60
    allowed = 0
    for step in range(1, 2001):
        now = T0 + step * 0.001
        allowed += (await ahead.acquire(key, 0, now + 0.5)).allowed
        allowed += (await behind.acquire(key, 0, now)).allowed
    # Two seconds pass; the clock half a second ahead may see half a second more, never more.
    assert allowed == 2


async def test_a_clock_far_ahead_cannot_lock_a_subject_out(backend: Backend) -> None:
    ahead, behind = await backend.workers()
    key = [LimitSubject("key", "k1", rpm=2)]
    assert len(await admitted(ahead, key, 2, T0 + 30)) == 2
    refused = await behind.acquire(key, 0, T0)
    assert not refused.allowed
    assert refused.retry_after <= 61
    assert (await behind.acquire(key, 0, T0 + refused.retry_after)).allowed

    other = [LimitSubject("key", "k2", rpm=2)]
    assert len(await admitted(ahead, other, 2, T0 + 3600)) == 2
    assert (await behind.acquire(other, 0, T0)).allowed


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"scope": "user", "subject": "u"},
        {"scope": "key", "subject": ""},
        {"scope": "key", "subject": "k", "rpm": 0},
        {"scope": "key", "subject": "k", "tpm": -5},
        {"scope": "key", "subject": "k", "max_parallel": True},
        {"scope": "key", "subject": "k", "rpm": 1.5},
        {"scope": "key", "subject": "k", "tpm": 10**11},
    ],
)
def test_a_subject_with_a_bad_limit_is_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        LimitSubject(**arguments)


async def test_bad_calls_are_refused(limiter: RateLimiter) -> None:
    key = LimitSubject("key", "k1", rpm=1)
    with pytest.raises(ValueError, match="tokens"):
        await limiter.acquire([key], -1, T0)
    with pytest.raises(ValueError, match="once"):
        await limiter.acquire([key, LimitSubject("key", "k1", tpm=5)], 1, T0)
    assert (await limiter.acquire([key], 0, T0)).allowed


@pytest.mark.parametrize(
    "arguments",
    [{"on_redis_error": "maybe"}, {"timeout": 0}, {"lease_ttl": float("inf")}, {"timeout": "1"}],
)
def test_a_bad_policy_is_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        RateLimitPolicy(**arguments)


async def test_the_factory_picks_the_backend() -> None:
    assert isinstance(create_rate_limiter(None), InProcessRateLimiter)
    limiter = create_rate_limiter("redis://127.0.0.1:6379/15", RateLimitPolicy())
    assert isinstance(limiter, RedisRateLimiter)
    await limiter.close()
    with pytest.raises(ValueError, match="Redis URL"):
        create_rate_limiter("notredis://x")
