"""The `console` section of the config: sessions, sign-in throttling and one-time links.

```yaml
console:
  session_idle_minutes: 60          # signed out after this long without a request
  session_max_hours: 12             # and after this long whatever happens
  session_store: auto               # auto (Redis when STEERWAY_REDIS_URL is set), database, redis
  signin_attempts_per_account: 5    # failed sign-ins per account within the window...
  signin_attempts_per_address: 20   # ...and per client address, before answering 429
  signin_window_minutes: 15
  first_owner_link_hours: 24        # how long the link printed at the first start works
  reset_link_hours: 24              # how long a password link works
  public_url: https://steerway.example.com   # the base of links printed and handed out
  trust_forwarded_headers: false    # read X-Forwarded-Proto/-Host/-For from a proxy in front
  allowed_origins: [https://console.example.com]   # other origins allowed to send changes
```

Minutes and hours may be fractions. Every field is optional.
"""

from __future__ import annotations

from typing import Any, Final, Protocol
from urllib.parse import SplitResult, urlsplit

import msgspec

SESSION_STORES: Final = ("auto", "database", "redis")
SECTION_FIELDS: Final = (
    "session_idle_minutes",
    "session_max_hours",
    "session_store",
    "signin_attempts_per_account",
    "signin_attempts_per_address",
    "signin_window_minutes",
    "first_owner_link_hours",
    "reset_link_hours",
    "public_url",
    "trust_forwarded_headers",
    "allowed_origins",
)


class ConsoleConfig(msgspec.Struct, frozen=True, kw_only=True):
    session_idle_minutes: float = 60.0
    """A session unused for this long is over; every request through it starts the time anew."""
    session_max_hours: float = 12.0
    """A session is over this long after sign-in, however busy it is."""
    session_store: str = "auto"
    """`auto`: Redis when STEERWAY_REDIS_URL is set, else the database."""
    signin_attempts_per_account: int = 5
    signin_attempts_per_address: int = 20
    signin_window_minutes: float = 15.0
    """Failed sign-ins are counted over this sliding window; past either limit the sign-in
    form answers 429 until the oldest failure leaves the window."""
    first_owner_link_hours: float = 24.0
    reset_link_hours: float = 24.0
    public_url: str | None = None
    """Where people reach the console (`https://steerway.example.com`); links the gateway
    prints or hands out start with it. Unset: the address `steerway serve` listens on, or the
    address a request came to."""
    trust_forwarded_headers: bool = False
    """Set when a proxy in front of the gateway sets X-Forwarded-Proto, X-Forwarded-Host and
    X-Forwarded-For: cookies are then marked Secure behind a TLS proxy, and sign-in throttling
    and the audit log see the client's address rather than the proxy's."""
    allowed_origins: tuple[str, ...] = ()
    """Origins besides the console's own from which a signed-in browser may send changes."""


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def report(self, path: str, message: str) -> None: ...

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str) -> str: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def http_url(self, value: Any, path: str) -> str: ...


def parse_console(value: Any, path: str, reader: Reader) -> ConsoleConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = ConsoleConfig()
    numbers = {
        name: reader.positive_number(
            fields.get(name), f"{path}.{name}", default=getattr(defaults, name)
        )
        for name in SECTION_FIELDS
        if name.endswith(("_minutes", "_hours"))
    }
    counts = {
        name: reader.positive_integer(
            fields.get(name), f"{path}.{name}", default=getattr(defaults, name)
        )
        for name in ("signin_attempts_per_account", "signin_attempts_per_address")
    }
    if numbers["session_idle_minutes"] > numbers["session_max_hours"] * 60:
        reader.report(
            f"{path}.session_idle_minutes",
            "is longer than session_max_hours, so it would never apply",
        )
    public_url = None
    if fields.get("public_url") is not None:
        public_url = reader.http_url(fields["public_url"], f"{path}.public_url") or None
    trust = fields.get("trust_forwarded_headers", False)
    if not isinstance(trust, bool):
        reader.report(f"{path}.trust_forwarded_headers", "expected true or false")
        trust = False
    return ConsoleConfig(
        session_idle_minutes=numbers["session_idle_minutes"],
        session_max_hours=numbers["session_max_hours"],
        signin_window_minutes=numbers["signin_window_minutes"],
        first_owner_link_hours=numbers["first_owner_link_hours"],
        reset_link_hours=numbers["reset_link_hours"],
        signin_attempts_per_account=counts["signin_attempts_per_account"],
        signin_attempts_per_address=counts["signin_attempts_per_address"],
        session_store=reader.choice(
            fields.get("session_store"),
            f"{path}.session_store",
            SESSION_STORES,
            default=defaults.session_store,
        ),
        public_url=public_url,
        trust_forwarded_headers=trust,
        allowed_origins=_origins(fields.get("allowed_origins"), f"{path}.allowed_origins", reader),
    )


def _origins(value: Any, path: str, reader: Reader) -> tuple[str, ...]:
    """Origins as browsers send them: `scheme://host[:port]`, nothing after."""
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.report(path, "expected a list of origins such as https://console.example.com")
        return ()
    origins: list[str] = []
    for index, item in enumerate(value):
        parts = urlsplit(item) if isinstance(item, str) else None
        try:
            valid = (
                parts is not None
                and parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and not parts.path.strip("/")
                and not parts.query
                and not parts.username
                and _port_parses(parts)
            )
        except ValueError:
            valid = False
        if not valid or parts is None:
            reader.report(f"{path}[{index}]", "expected an origin such as https://host[:port]")
            continue
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def _port_parses(parts: SplitResult) -> bool:
    """`SplitResult.port` raises ValueError for a port that is not a number in 0..65535."""
    _ = parts.port
    return True
