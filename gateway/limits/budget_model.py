"""What the budget ledger takes and gives: charges, reservations, settlements, its policy.

Money is an integer count of micro-dollars (1e-6 USD). Prices come as Decimal USD: a reservation
rounds up (`reserve_micros`) so it never under-holds, a settlement rounds half up
(`settle_micros`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Literal, NamedTuple

import msgspec

from gateway.keys.limits import BudgetLimit, micros_to_usd
from telemetry.escaping import escape_text

SCOPES: tuple[str, ...] = ("key", "workspace", "end_user", "bucket")
# Scopes whose subject is only unique inside a workspace (an end user's `user` string, a bucket
# name): the workspace id is part of their stored subject so two tenants never share a budget.
_WORKSPACE_LOCAL_SCOPES = frozenset({"end_user", "bucket"})
_SUBJECT_MAX = 256  # budget_spend.subject
_SCOPE_NAMES = {
    "key": "API key",
    "workspace": "workspace",
    "end_user": "end user",
    "bucket": "budget bucket",
}


def reserve_micros(usd: Decimal) -> int:
    """USD to micro-dollars, rounded up: what a reservation holds."""
    return int(usd.scaleb(6).to_integral_value(ROUND_CEILING))


def settle_micros(usd: Decimal) -> int:
    """USD to micro-dollars, rounded half up: what a settlement charges."""
    return int(usd.scaleb(6).to_integral_value(ROUND_HALF_UP))


class Charge(msgspec.Struct, frozen=True):
    """One budget a request must pass: `limit` over its window, for one scope and subject.

    `subject` is the key id (scope "key"), the workspace id ("workspace"), the request's `user`
    ("end_user") or the bucket name a rule's `budget` action gave ("bucket"). `timezone` (IANA)
    says where calendar windows begin.
    """

    scope: str
    subject: str
    workspace_id: str
    limit: BudgetLimit
    timezone: str = "UTC"


AccountKey = tuple[str, str, str, int]
"""(scope, stored subject, window, window start in epoch seconds): one row of budget_spend."""


def stored_subject(charge: Charge) -> str:
    """The subject as persisted: escaped as telemetry escapes what a database cannot store (an
    end user's NUL becomes the text `\\u0000`), workspace-qualified where the name is only unique
    inside a workspace, and hashed when it would not fit the column. Redis keys and the
    in-process ledger use it too, so spend read back from the table meets the same account."""
    name = escape_text(charge.subject)
    if charge.scope in _WORKSPACE_LOCAL_SCOPES:
        subject = f"{charge.workspace_id}/{name}"
        if len(subject) > _SUBJECT_MAX:
            digest = hashlib.sha256(name.encode()).hexdigest()
            subject = f"{charge.workspace_id}/sha256:{digest}"
    elif len(name) > _SUBJECT_MAX:
        subject = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    else:
        subject = name
    return subject


class Held(NamedTuple):
    """A charge resolved to the account (budget and window) it draws on at reservation time."""

    charge: Charge
    key: AccountKey
    ends: int | None  # epoch seconds the window ends; None for "total"


class BudgetState(msgspec.Struct, frozen=True, kw_only=True):
    """One budget as the ledger saw it: the one that refused a request, or one whose soft limit
    a request's spend crossed."""

    scope: str
    subject: str
    workspace_id: str
    window: str
    limit_micros: int
    spent_micros: int
    """Settled spend in the window."""
    reserved_micros: int
    """Held by requests still running."""
    resets_at: datetime | None
    """UTC instant the window ends; None for a "total" budget."""
    soft_percent: float | None = None

    @property
    def used_micros(self) -> int:
        return self.spent_micros + self.reserved_micros

    @property
    def percent_spent(self) -> float:
        return 100.0 * self.spent_micros / self.limit_micros if self.limit_micros else math.inf

    def describe(self) -> str:
        """`the daily budget of $10.00 for API key 'k1'`."""
        name = _SCOPE_NAMES.get(self.scope, self.scope)
        window = "total" if self.window == "total" else self.window
        return (
            f"the {window} budget of ${micros_to_usd(self.limit_micros)} "
            f"for {name} '{self.subject}'"
        )

    def denial_message(self) -> str:
        """The text of the 429 `insufficient_quota` answer: which budget, and when it resets."""
        used = micros_to_usd(self.used_micros)
        if self.resets_at is None:
            when = "it does not reset"
        else:
            when = f"it resets at {self.resets_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        return (
            f"Budget exceeded: {self.describe()} has ${used} spent or reserved, "
            f"not enough for this request; {when}."
        )


class Reservation:
    """The outcome of `reserve`: `ok` (the request may go ahead) or refused.

    Refused because a budget is exhausted: `denied` names it (answer 429 `insufficient_quota`).
    Refused because Redis failed under the "closed" policy: `unavailable` (answer 503
    `limits_unavailable`). `degraded`: Redis failed under the "open" policy and the request was
    let through unaccounted for in Redis (its spend is still persisted on settle).
    Pass the object back to `settle` or `release` exactly once; later calls do nothing.
    """

    __slots__ = (
        "amount_micros",
        "degraded",
        "denied",
        "finished",
        "held",
        "id",
        "now",
        "unavailable",
    )

    def __init__(
        self,
        *,
        id: str,
        held: tuple[Held, ...],
        amount_micros: int,
        now: float,
        denied: BudgetState | None = None,
        degraded: bool = False,
        unavailable: bool = False,
    ) -> None:
        self.id = id
        self.held = held
        self.amount_micros = amount_micros
        self.now = now
        self.denied = denied
        self.degraded = degraded
        self.unavailable = unavailable
        self.finished = denied is not None or unavailable

    @property
    def ok(self) -> bool:
        return self.denied is None and not self.unavailable

    def __repr__(self) -> str:
        state = "ok" if self.ok else ("denied" if self.denied else "unavailable")
        extra = ", degraded" if self.degraded else ""
        return f"Reservation({state}, {self.amount_micros} micros, {len(self.held)} budgets{extra})"


class Settlement(msgspec.Struct, frozen=True):
    """The outcome of `settle`."""

    soft_limits: tuple[BudgetState, ...] = ()
    """Budgets whose settled spend crossed their soft limit with this request (each crossing is
    reported by exactly one settlement)."""
    degraded: bool = False
    """Redis failed: the spend is persisted but the shared ledger did not see it."""


NO_SETTLEMENT = Settlement()


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """How the ledger behaves; every field has a working default."""

    on_redis_error: Literal["open", "closed"] = "closed"
    """Redis failed or timed out: "open" lets the request through (`degraded`), "closed"
    refuses it (`unavailable`)."""
    redis_timeout: float = 0.2
    """Seconds one Redis call may take before the failure policy applies."""
    redis_connections: int = 32
    """Connections to Redis per worker; more concurrent calls wait for one."""
    reservation_ttl: float = 900.0
    """Seconds a reservation holds money if it is never settled or released (a crashed worker).
    Longer than the longest request the gateway serves."""
    flush_interval: float = 0.5
    """Seconds between write-behind flushes of settled spend to the database."""
    expiry_margin: float = 86400.0
    """Seconds a window's Redis keys outlive the window (late settlements still land)."""
    view_max_age: float = 1.0
    """Seconds `percent_used` may answer from this worker's view before asking Redis again."""
    rebuild_timeout: float = 5.0
    """Seconds a request waits for Redis to be rebuilt from the database after it lost its
    data; past it the failure policy applies."""
    key_prefix: str = "steerway:budget"

    def __post_init__(self) -> None:
        if self.on_redis_error not in ("open", "closed"):
            raise ValueError(
                f"on_redis_error must be 'open' or 'closed', got {self.on_redis_error!r}"
            )
        for name in (
            "redis_timeout",
            "reservation_ttl",
            "flush_interval",
            "view_max_age",
            "rebuild_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"budget policy {name} must be a positive number of seconds")
            if not math.isfinite(value):
                raise ValueError(f"budget policy {name} must be finite")
        if isinstance(self.redis_connections, bool) or not isinstance(self.redis_connections, int):
            raise ValueError("budget policy redis_connections must be an integer")
        if self.redis_connections < 1:
            raise ValueError("budget policy redis_connections must be at least 1")
        if not self.expiry_margin >= 0:
            raise ValueError("budget policy expiry_margin must not be negative")
