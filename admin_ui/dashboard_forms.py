"""The panel editor's form: its fields to the API's dashboard body, a dashboard back to fields,
the editing actions (add, remove, move a panel), and the API's problems back to fields.

A panel's fields are named `panel-<n>-<field>` (n from 0, in the order shown): `title`, `kind`,
`metric`, `group_by_1`, `group_by_2`, `filters` (one `dimension=value` a line), `chart`,
`width`, `top`. The form posts `panel_count` so a panel whose fields were all left empty still
counts. A problem's path (`panels[2].group_by`) names the field it is shown next to
(`panel-2-group_by`); a problem with a panel as a whole (`panels[2]`) is shown at the top of
the panel (`panel-2-panel`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from litestar.datastructures import FormMultiDict

from admin_ui.dashboard_model import MAX_PANELS, Dashboard, Panel, Problem
from telemetry.analytics_dimensions import DIMENSIONS as ANALYTICS_DIMENSIONS
from telemetry.analytics_metrics import METRICS

PANEL_FIELDS: Final = (
    "title",
    "kind",
    "metric",
    "group_by_1",
    "group_by_2",
    "filters",
    "chart",
    "width",
    "top",
)
DASHBOARD_FIELDS: Final = ("name", "description", "shared", "version", "workspace")
KIND_LABELS: Final = {
    "metric": "A metric",
    "budgets": "Budgets",
    "forecast": "Spend forecast",
    "anomalies": "Anomalies",
    "providers": "Providers table",
    "token_waterfall": "Token waterfall",
    "cache_roi": "Cache savings",
}
CHART_LABELS: Final = {
    "line": "Line",
    "area": "Area",
    "stacked": "Stacked area",
    "bar": "Bars",
    "table": "Table",
    "stat": "Single value",
}
WIDTH_LABELS: Final = {"full": "Full", "half": "Half", "third": "A third", "quarter": "A quarter"}
DIMENSIONS: Final = tuple(ANALYTICS_DIMENSIONS)
"""Every dimension a metric may be split or filtered by (which ones a metric takes, the
analytics say when the dashboard is checked)."""
NEW_PANEL: Final = {
    "title": "",
    "kind": "metric",
    "metric": "requests",
    "group_by_1": "",
    "group_by_2": "",
    "filters": "",
    "chart": "line",
    "width": "half",
    "top": "",
}
_ACTION: Final = re.compile(r"^(remove|up|down)-(\d{1,3})$")
_PANEL_PATH: Final = re.compile(r"^panels\[(\d+)\](?:\.([a-z_]+))?")

PanelValues = dict[str, str]


def panel_field(index: int, name: str) -> str:
    return f"panel-{index}-{name}"


@dataclass
class Editor:
    """What the editor shows: the dashboard's fields, each panel's, problems by field (`""`:
    the form as a whole), and the field to put the focus on after an action."""

    values: dict[str, str]
    panels: list[PanelValues]
    errors: dict[str, str] = field(default_factory=dict)
    focus: str | None = None

    @property
    def shared(self) -> bool:
        return self.values.get("shared", "") == "on"

    def panel_form(self, index: int) -> PanelForm:
        """One panel's fields as the form macros read them: by their names in the form."""
        values = {panel_field(index, name): value for name, value in self.panels[index].items()}
        return PanelForm(values, self.errors)


@dataclass(frozen=True, slots=True)
class PanelForm:
    values: dict[str, str]
    errors: dict[str, str]


def metric_choices() -> list[tuple[str, str]]:
    return [(name, metric.title) for name, metric in METRICS.items()]


# --- reading the form ---------------------------------------------------------------------------


def read_editor(form: FormMultiDict) -> Editor:
    values = {name: str(form.get(name, "")) for name in DASHBOARD_FIELDS}
    values["shared"] = "on" if form.get("shared") else ""
    count_text = str(form.get("panel_count", "0"))
    count = min(int(count_text), MAX_PANELS + 1) if count_text.isdigit() else 0
    panels = [
        {name: str(form.get(panel_field(index, name), "")) for name in PANEL_FIELDS}
        for index in range(count)
    ]
    return Editor(values, panels)


def apply_action(editor: Editor, action: str) -> bool:
    """Add, remove or move a panel as `action` says (`add`, `remove-2`, `up-2`, `down-2`),
    and where the focus goes next; False when `action` is none of these."""
    panels = editor.panels
    if action == "add":
        if len(panels) >= MAX_PANELS:
            editor.errors["panels"] = f"A dashboard has at most {MAX_PANELS} panels."
            editor.focus = "add-panel"
            return True
        panels.append(dict(NEW_PANEL))
        editor.focus = panel_field(len(panels) - 1, "title")
        return True
    match = _ACTION.match(action)
    if match is None:
        return False
    verb, index = match.group(1), int(match.group(2))
    if index >= len(panels):
        return True
    if verb == "remove":
        panels.pop(index)
        editor.focus = panel_field(min(index, len(panels) - 1), "title") if panels else "add-panel"
        return True
    other = index - 1 if verb == "up" else index + 1
    if 0 <= other < len(panels):
        panels[index], panels[other] = panels[other], panels[index]
        index = other
    editor.focus = panel_field(index, verb)
    if len(panels) == 1:
        editor.focus = panel_field(index, "title")
    elif verb == "up" and index == 0:
        editor.focus = panel_field(index, "down")
    elif verb == "down" and index == len(panels) - 1:
        editor.focus = panel_field(index, "up")
    return True


def _filters(text: str, where: str, errors: dict[str, str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip() or not value.strip():
            errors[where] = f"Line {number}: write dimension=value, such as model=gpt-4o-mini."
            continue
        values = filters.setdefault(name.strip(), [])
        if value.strip() not in values:
            values.append(value.strip())
    return filters


def _top(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return None
    return int(stripped) if re.fullmatch(r"[0-9]{1,9}", stripped) else stripped


def panel_body(values: Mapping[str, str], index: int, errors: dict[str, str]) -> dict[str, Any]:
    """A panel as the API takes it; what cannot be read (a filter line) goes to `errors`."""
    kind = values.get("kind", "metric")
    body: dict[str, Any] = {"title": values.get("title", "").strip(), "kind": kind}
    if kind == "metric" and values.get("metric"):
        body["metric"] = values["metric"]
    group_by = [values.get(name, "") for name in ("group_by_1", "group_by_2")]
    if any(group_by):
        body["group_by"] = [dimension for dimension in group_by if dimension]
    filters = _filters(values.get("filters", ""), panel_field(index, "filters"), errors)
    if filters:
        body["filters"] = filters
    top = _top(values.get("top", ""))
    if top is not None:
        body["top"] = top
    body["chart"] = values.get("chart") or "line"
    body["width"] = values.get("width") or "half"
    return body


def dashboard_body(editor: Editor) -> dict[str, Any]:
    """The API's body for what the editor holds; problems reading it go to `editor.errors`."""
    body: dict[str, Any] = {
        "name": editor.values.get("name", "").strip(),
        "description": editor.values.get("description", "").strip(),
        "panels": [
            panel_body(values, index, editor.errors) for index, values in enumerate(editor.panels)
        ],
        "shared": editor.shared,
    }
    if editor.values.get("workspace"):
        body["workspace"] = editor.values["workspace"]
    return body


# --- a stored dashboard to the form -------------------------------------------------------------


def panel_values(panel: Panel) -> PanelValues:
    group_by = [*panel.group_by, "", ""]
    return {
        "title": panel.title,
        "kind": panel.kind,
        "metric": panel.metric or "",
        "group_by_1": group_by[0],
        "group_by_2": group_by[1],
        "filters": "\n".join(
            f"{name}={value}" for name, values in panel.filters.items() for value in values
        ),
        "chart": panel.chart,
        "width": panel.width,
        "top": "" if panel.top is None else str(panel.top),
    }


def editor_of(
    dashboard: Dashboard, *, shared: bool, version: int | None = None, workspace: str = ""
) -> Editor:
    values = {
        "name": dashboard.name,
        "description": dashboard.description,
        "shared": "on" if shared else "",
        "version": "" if version is None else str(version),
        "workspace": workspace,
    }
    return Editor(values, [panel_values(panel) for panel in dashboard.panels])


def new_editor(workspace: str = "") -> Editor:
    editor = editor_of(Dashboard(name=""), shared=False, workspace=workspace)
    editor.panels.append({**NEW_PANEL, "title": "Requests"})
    return editor


def preview_of(body: Mapping[str, Any]) -> Dashboard | None:
    """The dashboard a body describes, when it reads as one (for a preview)."""
    fields = {name: body[name] for name in ("name", "description", "panels") if name in body}
    try:
        return msgspec.convert(fields, Dashboard)
    except msgspec.ValidationError:
        return None


# --- problems to fields -------------------------------------------------------------------------


def field_of_path(path: str | None, panel_count: int) -> str:
    """The editor's field a problem's path names: `panels[2].group_by` is `panel-2-group_by`,
    `panels[2]` the panel as a whole (`panel-2-panel`); "" for the form as a whole."""
    if not path:
        return ""
    match = _PANEL_PATH.match(path)
    if match is None:
        return path if path in ("name", "description", "shared", "workspace", "panels") else ""
    index = int(match.group(1))
    if index >= panel_count:
        return "panels"
    name = match.group(2)
    if name not in (*PANEL_FIELDS, "group_by"):
        return panel_field(index, "panel")
    return panel_field(index, name)


def place_problems(editor: Editor, problems: Sequence[Problem]) -> None:
    """Each problem next to its field (the first one a field has is the one shown)."""
    for problem in problems:
        where = field_of_path(problem.path, len(editor.panels))
        message = problem.message[:1].upper() + problem.message[1:]
        editor.errors.setdefault(where, message.rstrip(".") + ".")
