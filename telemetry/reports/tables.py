"""Tables of a report: a metric (or several) per value of a dimension, ranked, with the groups
beyond the first few folded into one `(other)` row whose sums are added, and columns derived
from the sums (a rate, a share) computed the way the analytics compute them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from telemetry.analytics import OTHER
from telemetry.analytics_metrics import METRICS
from telemetry.reports.document import Column, Table, Unit, Value
from telemetry.reports.queries import Number, Reader, unit_of

Row = dict[str, Number]


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    title: str
    metric: str | None = None
    derive: Callable[[Row], Number] | None = None
    unit: Unit | None = None

    @property
    def shown_unit(self) -> Unit:
        if self.unit is not None:
            return self.unit
        return unit_of(self.metric) if self.metric else ""


def metric_col(metric: str, title: str | None = None) -> Col:
    return Col(metric, title or METRICS[metric].title, metric=metric)


def ratio(numerator: str, denominator: str) -> Callable[[Row], Number]:
    def value(row: Row) -> Number:
        top, bottom = row.get(numerator), row.get(denominator)
        if top is None or not bottom:
            return None
        return float(top) / float(bottom)

    return value


def _add(first: Number, second: Number) -> Number:
    if first is None:
        return second
    if second is None:
        return first
    if isinstance(first, Decimal) or isinstance(second, Decimal):
        return Decimal(first) + Decimal(second)
    return first + second


def _rank(value: Number) -> float:
    return float(value) if value is not None else 0.0


async def group_table(
    reader: Reader,
    *,
    name: str,
    title: str,
    dimension: str,
    dimension_title: str,
    columns: tuple[Col, ...],
    top: int | None = 10,
    labels: Mapping[str, str] | None = None,
    filters: Mapping[str, tuple[str, ...]] | None = None,
    keep: Callable[[Row], bool] | None = None,
) -> Table:
    """One row per value of `dimension`, ranked by the first column's metric, largest first;
    with `top`, the rest folded into `(other)` (additive metrics summed, the others empty)."""
    metrics = list(dict.fromkeys(col.metric for col in columns if col.metric))
    answers = await asyncio.gather(
        *(reader.by_group(metric, dimension, filters=filters) for metric in metrics)
    )
    by_metric = dict(zip(metrics, answers, strict=True))
    groups = list(dict.fromkeys(group for answer in answers for group in answer))
    rows: dict[str, Row] = {
        group: {metric: by_metric[metric].get(group) for metric in metrics} for group in groups
    }
    if keep is not None:
        rows = {group: row for group, row in rows.items() if keep(row)}
    ranked = sorted(
        rows, key=lambda group: (group == OTHER, -_rank(rows[group][metrics[0]]), group)
    )
    shown = ranked if top is None else ranked[:top]
    folded = [] if top is None else ranked[top:]
    table_rows: list[tuple[Value, ...]] = []
    label_of = labels or {}
    for group in shown:
        label = label_of.get(group, group) or "(none)"
        table_rows.append(_cells(label, rows[group], columns))
    if folded:
        other: Row = {}
        for metric in metrics:
            additive = METRICS[metric].additive
            total: Number = None
            for group in folded:
                total = _add(total, rows[group][metric]) if additive else None
            other[metric] = total
        table_rows.append(_cells(OTHER, other, columns))
    return Table(
        name=name,
        title=title,
        columns=(
            Column(name=dimension, title=dimension_title),
            *(Column(name=col.name, title=col.title, unit=col.shown_unit) for col in columns),
        ),
        rows=tuple(table_rows),
    )


def _cells(label: str, row: Row, columns: tuple[Col, ...]) -> tuple[Value, ...]:
    cells: list[Value] = [label]
    for col in columns:
        if col.derive is not None:
            cells.append(col.derive(row))
        else:
            assert col.metric is not None
            cells.append(row.get(col.metric))
    return tuple(cells)
