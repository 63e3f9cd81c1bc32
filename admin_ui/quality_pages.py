"""`/admin/quality`: the Quality dashboard. Scores over time by model or evaluator, models ranked
by score and by cost per point, an A/B comparison with its confidence interval, and how many
evaluations ended how with what the judges cost.

The page lives in the analytics shell (`admin_ui.analytics_pages.analytics_page`): the range and
step in the top bar, the viewer's workspace scope, a bad parameter answered 400 with the reason.
Its own filters are a GET form, so a URL says exactly what it shows.
"""

from __future__ import annotations

import functools
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment
from litestar import Controller, Request, get
from litestar.response import Template
from markupsafe import Markup

from admin_ui.analytics_pages import analytics_page
from admin_ui.analytics_range import RANGE_PARAMETERS, PageRange
from admin_ui.analytics_state import analytics_state
from admin_ui.chart_svg import Series, bar_chart, time_chart
from admin_ui.quality_data import QualityData, read_quality
from admin_ui.quality_params import QualityFilters, read_quality_filters
from admin_ui.quality_trace import tone
from admin_ui.state import gateway_of
from admin_ui.templating import console_environment
from telemetry.analytics import InvalidQuery
from telemetry.evaluation.scores import InvalidScoreQuery

AnyRequest = Request[Any, Any, Any]

QUALITY_PATH: Final = "/admin/quality"
DESCRIPTION: Final = (
    "What evaluators' LLM judges scored answers (0 to 100): over time, by model, and one side "
    "against another. Judge spend counts the judges' own calls."
)


@functools.cache
def _environment() -> Environment:
    return console_environment()


def _series(data: QualityData) -> list[Series]:
    return [
        Series(line.name, list(zip(data.starts, line.means, strict=True))) for line in data.series
    ]


def _kept(parameters: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The range and workspace, for the filter form to send again."""
    return [(n, v) for n, v in parameters if n in (*RANGE_PARAMETERS, "workspace")]


_EXPLORER_NAMES: Final = {"last": "last", "from": "since", "to": "until", "workspace": "workspace"}


def _explorer_range(parameters: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The page's range as the traces explorer's parameters, for links to judged requests."""
    return [(_EXPLORER_NAMES[n], v) for n, v in parameters if n in _EXPLORER_NAMES]


def _with(parameters: list[tuple[str, str]], name: str, value: str) -> str:
    """This page's URL with `name` set to `value`."""
    kept = [(n, v) for n, v in parameters if n != name]
    return f"{QUALITY_PATH}?{urlencode([*kept, (name, value)])}"


def _render(
    request: AnyRequest, page_range: PageRange, filters: QualityFilters, data: QualityData
) -> Markup:
    parameters = [(n, str(v)) for n, v in request.query_params.multi_items() if v != ""]
    chart = time_chart(
        _series(data),
        start=page_range.start,
        end=page_range.end,
        step_seconds=page_range.step,
        unit="score",
        chart_id="quality-scores-chart",
        title=f"Mean score per step by {filters.by}",
    )
    bars = bar_chart(
        [(rank.model, rank.mean_score) for rank in data.ranking],
        unit="score",
        chart_id="quality-ranking-chart",
        title="Mean score by model",
    )
    template = _environment().get_template("quality/dashboard.html")
    return Markup(
        template.render(
            data=data,
            filters=filters,
            chart=chart,
            bars=bars,
            kept=_kept(parameters),
            tone=tone,
            api_query=urlencode(parameters),
            rank_links=[
                (label, _with(parameters, "rank", value), value == filters.rank)
                for value, label in (("score", "score"), ("cost_per_point", "cost per point"))
            ],
            explore_query=urlencode(
                [
                    *_explorer_range(parameters),
                    *([("evaluator", filters.evaluator)] if filters.evaluator else []),
                    ("evaluated", "true"),
                ]
            ),
        )
    )


class QualityPages(Controller):
    path = "/quality"

    @get("/", name="console:quality")
    async def quality(self, request: AnyRequest) -> Template:
        async def body(page_range: PageRange) -> Markup:
            state = await analytics_state(request, page_range)
            try:
                filters = read_quality_filters(state.parameters)
                data = await read_quality(
                    gateway_of(request).engine,
                    scope=state.scope,
                    since=page_range.start,
                    until=page_range.end,
                    step=page_range.step,
                    filters=filters,
                )
            except InvalidScoreQuery as error:
                raise InvalidQuery(error.parameter, str(error)) from error
            return _render(request, page_range, filters, data)

        return await analytics_page(
            request, nav_active="quality", title="Quality", description=DESCRIPTION, body=body
        )
