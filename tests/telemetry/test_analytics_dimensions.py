"""The dimensions each metric is listed with are exactly those the query planner takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.analytics import AnalyticsQuery, InvalidQuery, plan
from telemetry.analytics_dimensions import DIMENSIONS, dimensions_of, finest_step
from telemetry.analytics_metrics import METRICS

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_a_metric_takes_exactly_its_listed_dimensions(name: str) -> None:
    metric = METRICS[name]
    listed = dimensions_of(metric)
    assert set(listed) <= set(DIMENSIONS)
    for dimension in DIMENSIONS:
        grouped = AnalyticsQuery(name, START, END, group_by=(dimension,))
        filtered = AnalyticsQuery(name, START, END, filters={dimension: ("x",)})
        if dimension in listed:
            assert plan(grouped).step % finest_step(metric, {dimension}) == 0
            plan(filtered)
        else:
            for query in (grouped, filtered):
                with pytest.raises(InvalidQuery):
                    plan(query)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_the_finest_step_is_the_finest_the_planner_takes(name: str) -> None:
    metric = METRICS[name]
    finest = finest_step(metric)
    plan(AnalyticsQuery(name, START, END, step=finest))
    if finest > 60:
        with pytest.raises(InvalidQuery):
            plan(AnalyticsQuery(name, START, END, step=60))
    for dimension in dimensions_of(metric):
        step = finest_step(metric, {dimension})
        plan(AnalyticsQuery(name, START, END, step=step, group_by=(dimension,)))
        if step > finest:
            with pytest.raises(InvalidQuery):
                plan(AnalyticsQuery(name, START, END, step=finest, group_by=(dimension,)))
