"""What a scenario measured: per-round values of each target, and the targets' PASS/MISS checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmarks.stats import median, paired_difference, paired_ratio


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    digits: int = 2


@dataclass
class Cell:
    """One target in one scenario: `runs[i]` holds what round i measured (empty if it failed)."""

    target: str
    runs: list[dict[str, float]] = field(default_factory=list)
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [run.get(key, math.nan) for run in self.runs]

    def median(self, key: str) -> float | None:
        return median(self.values(key))


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None
    """None when it could not be measured (a target missing, no runs)."""
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "n/a"}[self.passed]


@dataclass
class ScenarioResult:
    name: str
    title: str
    description: str
    metrics: list[Metric]
    primary: str
    """The metric compared pair by pair in the ratio columns."""
    baseline: str
    """The cell that overheads are measured against (`direct`, or Steerway's default setup)."""
    overheads: list[Metric] = field(default_factory=list)
    """Metrics shown as `cell - baseline`, computed within each round."""
    cells: dict[str, Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    row_label: str = "target"
    ratios: bool = True
    """Whether the table has `row ÷ column` columns (off when rows are samples, not targets)."""

    def cell(self, target: str) -> Cell:
        return self.cells.setdefault(target, Cell(target))

    def measured(self, target: str) -> Cell | None:
        cell = self.cells.get(target)
        if cell is None or cell.unavailable or not any(cell.runs):
            return None
        return cell

    def ratio(self, target: str, other: str, key: str | None = None) -> float | None:
        a, b = self.measured(target), self.measured(other)
        if a is None or b is None:
            return None
        metric = key or self.primary
        return paired_ratio(a.values(metric), b.values(metric))

    def overhead(self, target: str, key: str) -> float | None:
        a, b = self.measured(target), self.measured(self.baseline)
        if a is None or b is None:
            return None
        return paired_difference(a.values(key), b.values(key))


def at_least(name: str, value: float | None, bound: float, unit: str, missing: str) -> Check:
    if value is None:
        return Check(name, None, missing)
    return Check(name, value >= bound, f"{value:.2f}{unit} (need >= {bound:g}{unit})")


def at_most(name: str, value: float | None, bound: float, unit: str, missing: str) -> Check:
    if value is None:
        return Check(name, None, missing)
    return Check(name, value <= bound, f"{value:.3f}{unit} (need <= {bound:g}{unit})")
