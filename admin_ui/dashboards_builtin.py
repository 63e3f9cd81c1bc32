"""The console's built-in analytics pages, each a `Dashboard` (so a user can copy one and change
it): Overview, Usage, Cost, Performance, Safety and Providers, and Forecast and Anomalies.

Each page's own extras (the Overview's firing alerts, the Performance page's deployment health)
are drawn by `admin_ui.analytics_pages` around the dashboard.
"""

from __future__ import annotations

from typing import Final

from admin_ui.dashboard_model import Dashboard, Panel

OVERVIEW: Final = Dashboard(
    name="Overview",
    description="Traffic, spend, errors and speed at a glance, against the previous period.",
    panels=[
        Panel(title="Requests", metric="requests", chart="stat", width="quarter"),
        Panel(title="Cost", metric="cost", chart="stat", width="quarter"),
        Panel(title="Error rate", metric="error_rate", chart="stat", width="quarter"),
        Panel(title="Latency p95", metric="latency_p95", chart="stat", width="quarter"),
        Panel(title="Tokens", metric="total_tokens", chart="stat", width="quarter"),
        Panel(title="Cache hit rate", metric="cache_hit_rate", chart="stat", width="quarter"),
        Panel(
            title="Requests by model",
            metric="requests",
            chart="stacked",
            group_by=["model"],
            top=8,
            width="full",
        ),
        Panel(title="Top models", metric="requests", chart="bar", group_by=["model"], top=8),
        Panel(title="Top keys by cost", metric="cost", chart="bar", group_by=["key"], top=8),
        Panel(
            title="Top errors",
            metric="errors",
            chart="table",
            group_by=["error_type", "provider"],
            filters={"status": ["error"]},
            top=10,
            width="full",
        ),
    ],
)

USAGE: Final = Dashboard(
    name="Usage",
    description="Who sends what: requests and tokens by model, key, status, tag and end user.",
    panels=[
        Panel(
            title="Requests by model",
            metric="requests",
            chart="stacked",
            group_by=["model"],
            top=10,
            width="full",
        ),
        Panel(
            title="Tokens by model",
            metric="total_tokens",
            chart="stacked",
            group_by=["model"],
            top=10,
        ),
        Panel(title="Requests by status", metric="requests", chart="stacked", group_by=["status"]),
        Panel(title="Input tokens", metric="input_tokens", chart="line", width="third"),
        Panel(title="Output tokens", metric="output_tokens", chart="line", width="third"),
        Panel(title="Cache hit rate", metric="cache_hit_rate", chart="line", width="third"),
        Panel(title="Requests by key", metric="requests", chart="bar", group_by=["key"], top=10),
        Panel(
            title="Requests by provider",
            metric="requests",
            chart="bar",
            group_by=["provider"],
            top=10,
        ),
        Panel(title="Requests by tag", metric="requests", chart="table", group_by=["tag"], top=15),
        Panel(
            title="Top end users",
            metric="requests",
            chart="table",
            group_by=["end_user"],
            top=15,
        ),
    ],
)

COST: Final = Dashboard(
    name="Cost",
    description="Where the money goes: by workspace, key and model, by tag and end user; the "
    "tokens behind it, the budgets, and what the cache saved.",
    panels=[
        Panel(title="Cost", metric="cost", chart="stat", width="quarter"),
        Panel(title="Saved by the cache", metric="cost_saved", chart="stat", width="quarter"),
        Panel(title="Unpriced requests", metric="unpriced", chart="stat", width="quarter"),
        Panel(
            title="Cost by model",
            metric="cost",
            chart="stacked",
            group_by=["model"],
            top=10,
            width="full",
        ),
        Panel(
            title="Attribution",
            metric="cost",
            chart="table",
            group_by=["workspace"],
            top=20,
            width="full",
        ),
        Panel(title="Cost by tag", metric="cost", chart="table", group_by=["tag"], top=15),
        Panel(
            title="Cost by end user",
            metric="cost",
            chart="table",
            group_by=["end_user"],
            top=15,
        ),
        Panel(title="Token waterfall", kind="token_waterfall"),
        Panel(title="Cache savings", kind="cache_roi"),
        Panel(title="Budgets", kind="budgets", width="full"),
    ],
)

PERFORMANCE: Final = Dashboard(
    name="Performance",
    description="How fast and how reliably: latency and time to first token by model, provider "
    "and deployment, the gateway's own overhead, errors by type and provider.",
    panels=[
        Panel(title="Latency p50", metric="latency_p50", chart="stat", width="quarter"),
        Panel(title="Latency p95", metric="latency_p95", chart="stat", width="quarter"),
        Panel(title="Time to first token p50", metric="ttft_p50", chart="stat", width="quarter"),
        Panel(title="Gateway overhead", metric="overhead_mean", chart="stat", width="quarter"),
        Panel(title="Error rate", metric="error_rate", chart="stat", width="quarter"),
        Panel(
            title="Latency p95 by model",
            metric="latency_p95",
            chart="line",
            group_by=["model"],
            top=8,
        ),
        Panel(
            title="Latency p50 by model",
            metric="latency_p50",
            chart="line",
            group_by=["model"],
            top=8,
        ),
        Panel(
            title="Time to first token p50 by model",
            metric="ttft_p50",
            chart="line",
            group_by=["model"],
            top=8,
        ),
        Panel(
            title="Time to first token p95 by model",
            metric="ttft_p95",
            chart="line",
            group_by=["model"],
            top=8,
        ),
        Panel(
            title="Latency p95 by provider",
            metric="latency_p95",
            chart="line",
            group_by=["provider"],
            top=8,
        ),
        Panel(
            title="Latency p95 by deployment",
            metric="latency_p95",
            chart="line",
            group_by=["deployment"],
            top=8,
        ),
        Panel(title="Gateway overhead", metric="overhead_mean", chart="line"),
        Panel(
            title="Error rate by provider",
            metric="error_rate",
            chart="line",
            group_by=["provider"],
            top=8,
        ),
        Panel(
            title="Errors by type",
            metric="errors",
            chart="stacked",
            group_by=["error_type"],
            filters={"status": ["error"]},
            top=8,
        ),
        Panel(
            title="Retries by deployment",
            metric="retries",
            chart="table",
            group_by=["deployment"],
            top=10,
        ),
    ],
)

SAFETY: Final = Dashboard(
    name="Safety",
    description="What the guardrails found and did: verdicts by guardrail and action, the kinds "
    "of entities found, and the keys most often blocked.",
    panels=[
        Panel(
            title="Guardrail verdicts by action",
            metric="guardrail_verdicts",
            chart="stacked",
            group_by=["action"],
            width="full",
        ),
        Panel(
            title="Verdicts by guardrail and action",
            metric="guardrail_verdicts",
            chart="table",
            group_by=["guardrail", "action"],
            top=20,
        ),
        Panel(
            title="Entity types found",
            metric="guardrail_entities",
            chart="bar",
            group_by=["entity_type"],
            top=12,
        ),
        Panel(
            title="Keys most often blocked",
            metric="guardrail_verdicts",
            chart="bar",
            group_by=["key"],
            filters={"action": ["block"]},
            top=10,
        ),
        Panel(
            title="Requests refused by a guardrail",
            metric="requests",
            chart="line",
            filters={"error_type": ["guardrail_violation"]},
        ),
    ],
)

PROVIDERS: Final = Dashboard(
    name="Providers",
    description="Every model and deployment side by side: price, speed, errors and volume.",
    panels=[
        Panel(title="Models and deployments", kind="providers", width="full"),
        Panel(
            title="Requests by provider",
            metric="requests",
            chart="stacked",
            group_by=["provider"],
            top=8,
        ),
        Panel(
            title="Latency p95 by provider",
            metric="latency_p95",
            chart="line",
            group_by=["provider"],
            top=8,
        ),
    ],
)

FORECAST: Final = Dashboard(
    name="Forecast",
    description="Where spend is heading: this month's end and the next 30 days, from the last "
    "eight weeks of daily spend, with each forecast's method and its error on its own history.",
    panels=[
        Panel(title="Spend forecast", kind="forecast", width="full"),
        Panel(title="By workspace", kind="forecast", group_by=["workspace"], width="full"),
        Panel(title="By key", kind="forecast", group_by=["key"], width="full"),
        Panel(title="By model", kind="forecast", group_by=["model"], width="full"),
    ],
)

ANOMALIES: Final = Dashboard(
    name="Anomalies",
    description="Hours whose cost, request rate, error rate or latency strayed from the same "
    "hour of earlier weeks, per workspace and model.",
    panels=[
        Panel(title="Anomalies", kind="anomalies", group_by=["workspace", "model"], width="full"),
    ],
)

BUILTIN: Final = {
    "overview": OVERVIEW,
    "usage": USAGE,
    "cost": COST,
    "performance": PERFORMANCE,
    "safety": SAFETY,
    "providers": PROVIDERS,
    "forecast": FORECAST,
    "anomalies": ANOMALIES,
}
"""Each built-in page's dashboard, by the last part of its path (overview: /admin/analytics)."""
