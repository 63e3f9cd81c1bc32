"""Redis failures of the console's sessions and sign-in throttling, answered as 503.

Without its session store the console cannot tell who is signed in, and without its throttle it
cannot count failed sign-ins; either way the honest answer is "unavailable, retry", never a 500
and never a sign-in let through uncounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from gateway.errors import GatewayError


def store_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The console's session store (Redis) is unavailable right now; retry shortly.",
        type="server_error",
        code="service_unavailable",
        headers={"retry-after": "2"},
    )


@contextmanager
def redis_answers() -> Iterator[None]:
    """Turn a Redis failure (refused, timed out, dropped) into the 503 above."""
    try:
        yield
    except (RedisError, OSError):
        raise store_unavailable() from None
