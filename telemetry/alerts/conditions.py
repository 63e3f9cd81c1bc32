"""Whether a measured value breaches a rule, and at which severity. Pure functions."""

from __future__ import annotations

from typing import NamedTuple

from telemetry.alerts.notification import Severity
from telemetry.alerts.rule import AlertRule


class Breach(NamedTuple):
    severity: Severity
    threshold: float


def breach_of(rule: AlertRule, value: float) -> Breach | None:
    """The most severe threshold the value is past (strictly), or None.

    `above` breaches over the threshold and `below` under it; `change_pct` compares a change in
    percent with thresholds that are rises (> 0, breached above) or falls (< 0, breached
    below)."""
    for severity, threshold in rule.thresholds:
        rising = rule.condition == "above" or (rule.condition == "change_pct" and threshold > 0)
        if (value > threshold) if rising else (value < threshold):
            return Breach(severity, threshold)
    return None


def change_pct(current: float | None, previous: float | None) -> float | None:
    """The change from `previous` to `current` in percent; None when either is unknown or the
    previous is zero (no change can be measured from nothing)."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous) * 100.0
