"""A sliding window over sums per step: each step moves it by adding the step that enters and
taking away the one that leaves, so a week of evaluations costs a pass over the rows, not a
query (or a sum over the window) per evaluation. Histogram buckets add the same way, so a
percentile's window is exact too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telemetry.alerts.preview_sums import StepSums
from telemetry.alerts.window import Group
from telemetry.analytics import add_sums


class Rolling:
    """The sums of the groups that have rows in the steps [end - size, end)."""

    def __init__(self, sums: StepSums, size: int, columns: int) -> None:
        self.size = size
        self.columns = columns
        self.by_step: dict[int, list[tuple[Group, list[Any]]]] = {}
        for group, steps in sums.items():
            for index, values in steps.items():
                self.by_step.setdefault(index, []).append((group, values))
        self.sums: dict[Group, list[Any]] = {}
        self.rows: dict[Group, int] = {}
        self.end = 0
        self.changed: set[Group] = set()
        """The groups whose sums the last `advance_to` changed."""

    def advance_to(self, end: int) -> None:
        """Move the window to end before step `end` (one step at a time)."""
        self.changed = set()
        while self.end < end:
            self._enter(self.by_step.get(self.end, ()))
            self._leave(self.by_step.get(self.end - self.size, ()))
            self.end += 1

    def _enter(self, rows: Sequence[tuple[Group, list[Any]]]) -> None:
        for group, values in rows:
            add_sums(self.sums.setdefault(group, [0] * self.columns), values)
            self.rows[group] = self.rows.get(group, 0) + 1
            self.changed.add(group)

    def _leave(self, rows: Sequence[tuple[Group, list[Any]]]) -> None:
        for group, values in rows:
            self.rows[group] -= 1
            self.changed.add(group)
            if self.rows[group]:
                add_sums(self.sums[group], values, sign=-1)
            else:  # nothing left: start again from zero, with no rounding carried over
                del self.rows[group], self.sums[group]

    def zero(self) -> list[Any]:
        return [0] * self.columns
