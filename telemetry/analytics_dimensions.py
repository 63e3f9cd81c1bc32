"""What each analytics metric can be split and filtered by, told the way `analytics.plan` decides
it, for the API's catalogue and the console's pickers.

Dimensions of `usage_rollups` are kept per minute; those only `usage_breakdowns` holds (tags, end
users, rules, guardrails) per hour, so a query naming one takes steps of whole hours.
"""

from __future__ import annotations

from typing import Final

from telemetry.analytics import (
    BREAKDOWN_DIMENSIONS,
    ROLLUP_DIMENSIONS,
    SHARED_BREAKDOWN_DIMENSIONS,
)
from telemetry.analytics_metrics import BREAKDOWN_METRICS, Metric

DIMENSIONS: Final[dict[str, str]] = {
    "workspace": "The workspace (by id).",
    "key": "The virtual key (by id); empty for requests made without one.",
    "source": "Where the request was recorded: proxy, otlp or evaluation.",
    "provider": "The provider of the attempt that answered (the last attempt when none did).",
    "model": "The model the client asked for.",
    "served_model": "The provider's model that answered.",
    "deployment": "The deployment that answered.",
    "status": "ok, error, denied or cancelled.",
    "error_type": "The error's type or code; empty when none.",
    "cache_hit": "true when the gateway's cache answered, else false.",
    "tag": "A tag of the request: the first 100 of a workspace each day keep their names, "
    "the rest count as (other).",
    "end_user": "The end user (`user` in the request): the first 1000 of a workspace each day "
    "keep their names, the rest count as (other).",
    "rule": "A steering rule that matched (by id).",
    "guardrail": "The guardrail that found something (by name).",
    "action": "What the guardrail did: block, mask or log.",
    "entity_type": "The kind of entity a guardrail found, such as EMAIL_ADDRESS.",
}
"""Every dimension, with what its values are."""

MINUTE: Final = 60
HOUR: Final = 3600
HOURLY_DIMENSIONS: Final = frozenset(
    name for names in BREAKDOWN_DIMENSIONS.values() for name in names
) - frozenset(SHARED_BREAKDOWN_DIMENSIONS)
"""The dimensions kept per hour only."""


def dimensions_of(metric: Metric) -> tuple[str, ...]:
    """The dimensions `metric` can be grouped and filtered by, in `DIMENSIONS` order. Tags and
    end users are two of them for some metrics, but one query may not name both."""
    if metric.table == "breakdowns":
        assert metric.kind is not None
        names = set(SHARED_BREAKDOWN_DIMENSIONS) | set(BREAKDOWN_DIMENSIONS[metric.kind])
    else:
        names = set(ROLLUP_DIMENSIONS)
        if metric.name in BREAKDOWN_METRICS:
            names |= {"tag", "end_user"}
    return tuple(name for name in DIMENSIONS if name in names)


def finest_step(metric: Metric, named: set[str] | frozenset[str] = frozenset()) -> int:
    """The smallest step, in seconds, for `metric` split or filtered by the `named` dimensions."""
    if metric.table == "breakdowns" or named & HOURLY_DIMENSIONS:
        return HOUR
    return MINUTE
