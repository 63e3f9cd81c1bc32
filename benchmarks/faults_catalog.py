"""The faults the fault scenario applies, what each does and what the gateway may answer meanwhile.

A fault is applied for a set time in the middle of a steady load and then removed. It acts in one
of two ways:

- upstream faults give every request sent meanwhile a `mock` directive for the mock provider:
  half of them fail on every attempt (the gateway's retry fails too), half only on the first
  (`fail_first: 1`, so the retry succeeds);
- the others act on the processes and files around the gateway, through `begin` and `end`:
  the database or Redis behind a forwarder, the gateway process itself, its spill folder.

`allowed` lists the answers the documentation promises while the fault lasts and for a few
seconds after (a cooldown, a key cache catching up); before and after, only whole 2xx answers
are expected. Anything else is reported as unexpected.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from benchmarks.faults_load import Outcome

if TYPE_CHECKING:
    from benchmarks.faults_gateway import FaultPhase

HANG_BEYOND_FIRST_BYTE: Final = {"hang": True}
STREAM_CUT_AFTER_CHUNKS: Final = 2
FULL_SPILL_FILE_BYTES: Final = 64 * 1024
"""The spill file may grow this far while the disk is "full" (RLIMIT_FSIZE): a few batches spill,
then appends fail."""

Action = Callable[["FaultPhase"], None]
ServedOutcome = tuple[int | None, str | None]
"""(status, code) of an answer: (200, None), (502, "upstream_error"), (None, "refused")..."""


@dataclass(frozen=True)
class GatewaySpec:
    """How the gateway a fault runs against is set up."""

    redis: bool = False
    stale_key_ttl_s: float = 0.0
    durability: str = "memory"
    redis_policies_flipped: bool = False
    """`on_redis_error` the other way round from the defaults: the cache and rate limits
    `closed`, budgets `open`."""


@dataclass(frozen=True)
class Fault:
    name: str
    title: str
    gateway: GatewaySpec = GatewaySpec()
    directive: Callable[[str, int], dict[str, Any] | None] | None = None
    """Upstream faults: the `mock` field of a request sent while the fault lasts."""
    begin: Action | None = None
    end: Action | None = None
    allowed: frozenset[ServedOutcome] = frozenset()
    """Answers the documentation allows while the fault lasts (200 always is)."""
    refusable: Callable[[Outcome], bool] | None = None
    """Which requests may get the `allowed` answers; None: any."""
    incomplete_streams: bool = False
    """Streams may end without `[DONE]` while the fault lasts."""
    duration_option: str = "fault"
    """Which duration applies: `fault` (`--fault-duration`) or `database` (`--outage-duration`)."""
    loss_window: str | None = None
    """The documented window in which this fault may lose accepted requests; None: it may not."""
    guarantee: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def upstream_directive(failure: dict[str, Any]) -> Callable[[str, int], dict[str, Any] | None]:
    """Every other request fails on every attempt; the others fail once, then succeed."""

    def directive(kind: str, number: int) -> dict[str, Any] | None:
        if number % 2 == 0:
            return dict(failure)
        return {**failure, "fail_first": 1, "scenario": f"fault-{uuid.uuid4().hex}"}

    return directive


def stream_cut(kind: str, number: int) -> dict[str, Any] | None:
    if kind != "stream":
        return None
    return {"drop_after_chunks": STREAM_CUT_AFTER_CHUNKS}


def database_away(phase: FaultPhase) -> None:
    phase.stack.database_away()


def database_back(phase: FaultPhase) -> None:
    phase.stack.database_back()


def database_stalled(phase: FaultPhase) -> None:
    phase.stack.database_stalled()


def redis_away(phase: FaultPhase) -> None:
    phase.stack.redis_forwarder().cut()


def redis_slow(delay_s: float) -> Action:
    def slow(phase: FaultPhase) -> None:
        phase.stack.redis_forwarder().slow(delay_s)

    return slow


def redis_back(phase: FaultPhase) -> None:
    phase.stack.redis_forwarder().restore()


def sigterm(phase: FaultPhase) -> None:
    phase.mark("SIGTERM")
    phase.gateway.terminate()


def sigterm_during_outage(phase: FaultPhase) -> None:
    phase.stack.database_away()
    phase.pause(3.0)  # requests served from the stale key cache, batches failing
    phase.mark("SIGTERM")
    phase.gateway.terminate()


def restart(phase: FaultPhase) -> None:
    phase.gateway.start()


def database_back_and_restart(phase: FaultPhase) -> None:
    phase.stack.database_back()
    phase.gateway.start()


def sigterm_with_nowhere_to_write(phase: FaultPhase) -> None:
    phase.gateway.block_spill_dir()
    phase.stack.database_away()
    phase.pause(3.0)
    phase.mark("SIGTERM")
    phase.gateway.terminate()


def database_and_spill_back_and_restart(phase: FaultPhase) -> None:
    phase.stack.database_back()
    phase.gateway.unblock_spill_dir()
    phase.gateway.start()


def spill_unwritable(phase: FaultPhase) -> None:
    phase.gateway.block_spill_dir()
    phase.stack.database_away()


def spill_writable_after_database(phase: FaultPhase) -> None:
    """The database first: what the recorder kept in memory is written straight from there."""
    phase.stack.database_back()
    phase.pause(5.0)
    phase.gateway.unblock_spill_dir()


def spill_full(phase: FaultPhase) -> None:
    phase.gateway.limit_file_size(FULL_SPILL_FILE_BYTES)
    phase.stack.database_away()


def spill_room_before_database(phase: FaultPhase) -> None:
    """Room on disk first: the kept batches spill, then the database takes the spill files."""
    phase.gateway.limit_file_size(None)
    phase.pause(5.0)
    phase.stack.database_back()


UPSTREAM_GIVES_UP: Final = frozenset({(503, "no_deployment_available")})
"""A deployment failing three times in a row cools down (5 s in the scenario's config)."""
REFUSED_BEFORE_A_KEY: Final = frozenset({(503, "service_unavailable")})
LIMITS_UNAVAILABLE: Final = frozenset({(503, "limits_unavailable")})
GATEWAY_DOWN: Final = frozenset({(None, "refused"), (None, "cut")})
"""New connections are refused while the gateway is down; a request sent on an idle keep-alive
connection just as the gateway closes it at the stop finds it closed, unanswered (it was never
handled: a request the gateway handled but did not answer is always unexpected)."""
STALE_KEYS: Final = GatewaySpec(stale_key_ttl_s=600.0)
WITH_REDIS: Final = GatewaySpec(redis=True)
WITH_REDIS_POLICIES_FLIPPED: Final = GatewaySpec(redis=True, redis_policies_flipped=True)


def has_a_budget(outcome: Outcome) -> bool:
    """With the default policies only budgets refuse (`closed`) while Redis cannot answer."""
    return outcome.key == "budgeted"


def rate_limited_or_cacheable(outcome: Outcome) -> bool:
    """With the policies flipped, the rate limits and the cache refuse, budgets serve. The cache
    applies to chats with temperature 0 and to every embedding request."""
    return outcome.key == "limited" or outcome.kind in ("cached", "embeddings")


FAULTS: Final = (
    Fault(
        "upstream-5xx",
        "Upstream answers 500",
        directive=upstream_directive({"error": 500}),
        allowed=frozenset({(502, "upstream_error")}) | UPSTREAM_GIVES_UP,
        guarantee="Each request is answered: 200 after a retry, or 502 `upstream_error` (503 "
        "`no_deployment_available` while the deployment cools down); every answer is recorded.",
    ),
    Fault(
        "upstream-429",
        "Upstream answers 429 with retry-after: 1",
        directive=upstream_directive({"error": 429, "retry_after": 1}),
        allowed=frozenset({(429, "rate_limit_exceeded")}) | UPSTREAM_GIVES_UP,
        guarantee="The retry waits the provider's `retry-after`; a request still refused gets "
        "the provider's 429 with its `retry-after`; every answer is recorded.",
    ),
    Fault(
        "upstream-timeout",
        "Upstream never answers (beyond the 2 s first-byte timeout)",
        directive=upstream_directive(HANG_BEYOND_FIRST_BYTE),
        allowed=frozenset({(504, "upstream_timeout")}) | UPSTREAM_GIVES_UP,
        guarantee="No request waits longer than the timeouts allow: 504 `upstream_timeout` "
        "after the first-byte timeout of each attempt; every answer is recorded.",
    ),
    Fault(
        "upstream-garbage",
        "Upstream answers 200 with a body that is not JSON",
        directive=upstream_directive({"malformed": True}),
        allowed=frozenset({(502, "upstream_error")}) | UPSTREAM_GIVES_UP,
        incomplete_streams=True,
        guarantee="A body that cannot be read is retried, then 502 `upstream_error`; a stream "
        "whose events stop parsing ends with an error event; every answer is recorded.",
    ),
    Fault(
        "stream-cut",
        "Upstream streams stop after two chunks (connection closed)",
        directive=stream_cut,
        allowed=UPSTREAM_GIVES_UP,
        incomplete_streams=True,
        guarantee="A stream cut midway ends without `[DONE]` (the client sees it cut); it is "
        "recorded with what was relayed; other requests are unaffected.",
    ),
    Fault(
        "database-away",
        "Database away (Postgres: connections dropped and refused; SQLite: another process holds the write lock)",
        begin=database_away,
        end=database_back,
        allowed=REFUSED_BEFORE_A_KEY,
        duration_option="database",
        guarantee="Virtual keys get 503 `service_unavailable` with `retry-after` once their "
        "cache entry expires (not stored: refused before a key was accepted); the master key "
        "is served; what is served is spilled and written when Postgres is back.",
    ),
    Fault(
        "database-away-stale-keys",
        "Database away, `auth.stale_key_ttl_seconds: 600`",
        gateway=STALE_KEYS,
        begin=database_away,
        end=database_back,
        duration_option="database",
        guarantee="Keys verified before the outage keep being served; everything served is "
        "spilled and written when Postgres is back.",
    ),
    Fault(
        "database-stalled",
        "Database stops answering (Postgres: connections open, nothing relayed either way)",
        gateway=STALE_KEYS,
        begin=database_stalled,
        end=database_back,
        allowed=REFUSED_BEFORE_A_KEY,
        duration_option="database",
        guarantee="A key lookup with no answer in 5 s, a batch write with none in 10 s, finds "
        "the database unavailable: keys are served from the stale cache (or 503), records "
        "spill; the lookup that probes for the database's return waits up to 5 s.",
    ),
    Fault(
        "redis-away",
        "Redis away (cache, rate limits and budgets in Redis)",
        gateway=WITH_REDIS,
        begin=redis_away,
        end=redis_back,
        allowed=LIMITS_UNAVAILABLE,
        refusable=has_a_budget,
        guarantee="`on_redis_error` defaults: the cache and rate limits serve (open), a key with "
        "a budget gets 503 `limits_unavailable` (closed); every answer is recorded.",
    ),
    Fault(
        "redis-away-policies-flipped",
        "Redis away; `on_redis_error`: cache and rate limits `closed`, budgets `open`",
        gateway=WITH_REDIS_POLICIES_FLIPPED,
        begin=redis_away,
        end=redis_back,
        allowed=LIMITS_UNAVAILABLE,
        refusable=rate_limited_or_cacheable,
        guarantee="A key with rate limits, and a request the cache applies to (a chat with "
        "temperature 0, an embedding), get 503 `limits_unavailable`; a key with a budget is "
        "served unchecked (its spend still recorded); every answer is recorded.",
    ),
    Fault(
        "redis-slow",
        "Redis 400 ms away (each round trip 400 ms longer; `redis.timeout_ms` is 200)",
        gateway=WITH_REDIS,
        begin=redis_slow(0.2),
        end=redis_back,
        allowed=LIMITS_UNAVAILABLE,
        refusable=has_a_budget,
        guarantee="As if Redis were away, after at most the timeout per call; no request hangs "
        "on Redis.",
    ),
    Fault(
        "redis-slow-within-timeout",
        "Redis 50 ms away (each round trip 50 ms longer; `redis.timeout_ms` is 200)",
        gateway=WITH_REDIS,
        begin=redis_slow(0.025),
        end=redis_back,
        guarantee="Every request is served, each Redis call 50 ms slower; limits still apply.",
    ),
    Fault(
        "sigterm",
        "SIGTERM under load, then a restart",
        begin=sigterm,
        end=restart,
        allowed=GATEWAY_DOWN,
        guarantee="Requests in flight at the signal are answered in full; new connections are "
        "refused until the restart (a request sent on an idle keep-alive connection as the "
        "stop closes it finds it closed, unhandled); everything answered is recorded.",
    ),
    Fault(
        "sigterm-during-outage",
        "SIGTERM 3 s into a database outage, restart once it is back",
        gateway=STALE_KEYS,
        begin=sigterm_during_outage,
        end=database_back_and_restart,
        allowed=GATEWAY_DOWN,
        guarantee="What the recorder holds at the signal goes to the spill folder; the restart "
        "replays it.",
    ),
    Fault(
        "sigterm-nowhere-to-write",
        "SIGTERM 3 s into a database outage with the spill folder unwritable",
        gateway=STALE_KEYS,
        begin=sigterm_with_nowhere_to_write,
        end=database_and_spill_back_and_restart,
        allowed=GATEWAY_DOWN,
        loss_window="stopped while neither the database nor the spill folder takes records: "
        "the recorder keeps trying both for 30 s (`stop_timeout`), then drops what it holds, "
        "logged with the count and counted in `steerway_telemetry_dropped_total`",
        guarantee="The one fault that loses accepted requests, and only as documented: what "
        "the recorder held at the signal, after 30 s of trying; logged and counted.",
    ),
    Fault(
        "spill-unwritable",
        "Spill folder unwritable (a file in its place) during a database outage",
        gateway=STALE_KEYS,
        begin=spill_unwritable,
        end=spill_writable_after_database,
        duration_option="database",
        guarantee="Batches that can be neither written nor spilled stay in memory (requests "
        "are held back once 5,000 wait) and are written when Postgres is back.",
    ),
    Fault(
        "spill-full",
        "Spill folder full (no file may grow past 64 KiB) during a database outage",
        gateway=STALE_KEYS,
        begin=spill_full,
        end=spill_room_before_database,
        duration_option="database",
        guarantee="An append that does not fit is cut back; the batch stays in memory and is "
        "spilled or written as soon as either has room.",
    ),
)

FAULT_NAMES: Final = tuple(fault.name for fault in FAULTS)
