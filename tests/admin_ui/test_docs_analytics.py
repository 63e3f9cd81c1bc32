"""docs/analytics.md's API section stays true: it names every metric and dimension, and its
parameter table names every parameter the endpoint reads."""

from __future__ import annotations

import re
from pathlib import Path

from admin_ui.analytics_params import FILTERS, QUERY
from telemetry.analytics_dimensions import DIMENSIONS
from telemetry.analytics_metrics import METRICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def api_section() -> str:
    text = DOC.read_text()
    start = text.index("\n## API\n")
    following = text.find("\n## ", start + 1)
    return text[start : following if following != -1 else len(text)]


def table_names(section: str, heading: str) -> set[str]:
    """The back-quoted names in the first column of the table under `### heading`."""
    part = section.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    names: set[str] = set()
    for line in part.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_0-9<>]+)`", line.split(" | ", 1)[0]))
    return names


def test_every_metric_is_described() -> None:
    assert table_names(api_section(), "Metrics") == set(METRICS)


def test_every_dimension_is_described() -> None:
    assert table_names(api_section(), "Dimensions") == set(DIMENSIONS)


def test_every_parameter_is_described() -> None:
    described = table_names(api_section(), "Parameters")
    filters = set(FILTERS)
    read = {query.name for query in QUERY if query.name not in filters}
    assert described == read | {"<dimension>"}
