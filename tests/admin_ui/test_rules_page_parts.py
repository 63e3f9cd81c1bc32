"""The rule pages' parts that need no gateway: rule text, version diffs, the mix chart, forms."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, StrictUndefined
from litestar.datastructures import MultiDict

from admin_ui.chart_units import nice_step
from admin_ui.rule_diff import rule_changes
from admin_ui.rule_text import (
    RuleTextError,
    line_of,
    parse_rule_text,
    rule_as_text,
    split_problem,
    within_list,
)
from admin_ui.rules_chart import count_text, mix_chart
from admin_ui.rules_forms import (
    FieldError,
    field_for,
    replay_body,
    simulate_body,
    simulate_values,
)
from admin_ui.rules_views import STATES, example_rule
from gateway.steering.rulebook import Rulebook

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "admin_ui" / "templates"

RULE = """\
id: premium
when:
  all:
    - tags: premium
    - metadata.tier: gold
    - model: 5
then:
  route: gpt-4o
"""


def test_yaml_and_json_read_as_the_api_would_receive_them() -> None:
    document = parse_rule_text(RULE)
    assert document["when"]["all"][1] == {"metadata.tier": "gold"}
    assert parse_rule_text('{"id": "a", "then": {"tag": ["x"]}}') == {
        "id": "a",
        "then": {"tag": ["x"]},
    }
    assert parse_rule_text("id: a\nwhen: {time.date: 2026-01-02}") == {
        "id": "a",
        "when": {"time.date": "2026-01-02"},
    }
    shown = rule_as_text({"id": "a", "when": {"metadata.country": "no"}})
    assert parse_rule_text(shown) == {"id": "a", "when": {"metadata.country": "no"}}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("id: a\nid: b\n", "line 2, column 1", "duplicate key 'id'"),
        ('{"id": }', "line 1, column 8", "JSON syntax error"),
        ("then: [route: x\n", "line 2, column 1", "YAML syntax error"),
        ('{"priority": NaN}', "", "NaN is not a JSON number"),
        ("   \n", "", "the text is empty"),
    ],
)
def test_text_that_is_not_yaml_or_json_says_where(text: str, where: str, message: str) -> None:
    with pytest.raises(RuleTextError) as raised:
        parse_rule_text(text)
    assert raised.value.where == where and message in raised.value.message


def test_a_problem_path_is_placed_on_its_line() -> None:
    assert line_of(RULE, "when.all[1].metadata.tier") == 5
    assert line_of(RULE, "when.all[2].model") == 6
    assert line_of(RULE, "then.route.model") == 8, "a shorthand's implied key: its value's line"
    assert line_of(RULE, "when.all[7]") == 4, "past the list: where the list starts"
    assert line_of(RULE, "") is None and line_of("a: [", "a") is None
    assert line_of('{"id": "a",\n "then": {"route": 1}}', "then.route") == 2


def test_problem_paths_are_shown_within_what_was_typed() -> None:
    assert split_problem("rules[0].when.all[1].model: bad") == ("when.all[1].model", "bad")
    assert split_problem("rules[0]: missing 'then'") == ("", "missing 'then'")
    assert within_list("rules[2].then: bad") == ("[2].then", "bad")


def test_version_diffs_name_the_smallest_changed_value() -> None:
    before = {"priority": 10, "when": {"all": [{"tags": "a"}, {"model": "gpt-4o"}]}, "x": 1}
    after = {"priority": 10, "when": {"all": [{"tags": "a"}, {"model": "mini"}, {"stream": True}]}}
    changes = [(c.kind, c.path, c.before_text, c.after_text) for c in rule_changes(before, after)]
    assert changes == [
        ("changed", "when.all[1].model", '"gpt-4o"', '"mini"'),
        ("added", "when.all[2]", "", '{"stream": true}'),
        ("removed", "x", "1", ""),
    ]
    assert [c.path for c in rule_changes(None, {"id": "a", "then": {}})] == ["id", "then"]
    assert rule_changes({"a": 1}, {"a": 1.0}) == []
    assert [c.kind for c in rule_changes({"a": 1}, {"a": True})] == ["changed"]


def test_the_mix_chart_draws_both_series_on_one_scale_with_units_and_a_legend() -> None:
    before = [
        {"name": "gpt-4o", "requests": 3, "share": 0.75},
        {"name": "mini", "requests": 1, "share": 0.25},
    ]
    after = [
        {"name": "mini", "requests": 2.5, "share": 0.625},
        {"name": "gpt-4o", "requests": 1.5, "share": 0.375},
    ]
    svg = str(mix_chart(before, after))
    assert svg.startswith('<svg id="replay-mix-chart"') and svg.endswith("</svg>")
    bars = re.findall(
        r'<rect class="chart-(before|after)"[^>]*width="([\d.]+)" height="13">'
        r"<title>([^<]+)</title>",
        svg,
    )
    assert [(series, title) for series, _, title in bars] == [
        ("before", "gpt-4o, before (as recorded): 3 requests (75.0%)"),
        ("after", "gpt-4o, after (replayed rules): 1.5 requests (37.5%)"),
        ("before", "mini, before (as recorded): 1 requests (25.0%)"),
        ("after", "mini, after (replayed rules): 2.5 requests (62.5%)"),
    ]
    widths = {title.split(":")[0]: float(width) for _, width, title in bars}
    assert widths["gpt-4o, before (as recorded)"] == pytest.approx(
        2 * widths["gpt-4o, after (replayed rules)"]
    )
    assert (
        ">requests</text>" in svg
        and "Before (as recorded)" in svg
        and "After (replayed rules)" in svg
    )
    assert "&lt;b&gt;" in str(mix_chart([{"name": "<b>", "requests": 1, "share": 1.0}], []))
    assert [nice_step(n, whole=True) for n in (7, 12, 1000, 0)] == [2, 5, 200, 1]
    assert (count_text(1234), count_text(2.5), count_text(0.333333)) == ("1,234", "2.5", "0.33")


def query(**values: Any) -> MultiDict[str]:
    items: list[tuple[str, str]] = []
    for name, value in values.items():
        items += [(name, item) for item in value] if isinstance(value, list) else [(name, value)]
    return MultiDict(items)


def test_a_trace_link_fills_the_simulator_and_makes_the_api_body() -> None:
    values = simulate_values(
        query(
            request='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":9}',
            tags=["a", "b"],
            metadata='{"tier":"gold"}',
            workspace="w1",
        )
    )
    assert (values["model"], values["request"], values["tags"]) == (
        "gpt-4o",
        '{"max_tokens": 9}',
        "a, b",
    )
    body = simulate_body(values)
    assert body == {
        "request": {
            "max_tokens": 9,
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
        },
        "tags": "a, b",
        "metadata": {"tier": "gold"},
        "workspace": "w1",
    }
    typed = simulate_values(query(model="m", prompt="hello", operation="embeddings"))
    assert simulate_body(typed)["request"] == {"model": "m", "input": "hello"}
    with pytest.raises(FieldError) as raised:
        simulate_body(simulate_values(query(model="m", headers="[]")))
    assert raised.value.field == "headers"
    assert field_for("request.messages[0].role", typed) == "prompt"
    assert field_for("request.max_tokens", typed) == "request"
    assert field_for("rules[0].then", typed) == "rules" and field_for(None, typed) is None


def test_the_replay_form_takes_a_count_or_a_range() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    values = {
        "requests": "50",
        "last": "6h",
        "since": "",
        "until": "",
        "workspace": "",
        "rules": "",
        "merge": "",
        "run": "1",
    }
    assert replay_body(values, now) == {"last": 50, "since": "2026-12-06T06:00:00+00:00"}
    assert replay_body({**values, "since": "2026-01-01"}, now)["since"] == "2026-01-01"
    for field, value in (("requests", "ten"), ("last", "soon"), ("rules", "a: [")):
        with pytest.raises(FieldError) as raised:
            replay_body({**values, field: value}, now)
        assert raised.value.field == field
    merged = replay_body({**values, "rules": "- then: {tag: [x]}", "merge": "on"}, now)
    assert (merged["rules"], merged["merge"]) == ([{"then": {"tag": ["x"]}}], True)
    assert field_for("last", values) == "requests"


def test_an_empty_list_shows_a_valid_example_and_where_to_add_it() -> None:
    rulebook = Rulebook(config_rules=[], store=None, models=["small", "large"], providers=["p"])
    example = example_rule(rulebook)
    assert rulebook.validate([example]) == []
    assert example["then"]["route"] == "small"
    layout = "{% block content %}{% endblock %}{% block scripts %}{% endblock %}"
    environment = Environment(
        loader=ChoiceLoader([DictLoader({"base.html": layout}), FileSystemLoader(TEMPLATE_DIR)]),
        autoescape=True,
        undefined=StrictUndefined,
    )
    environment.globals["static"] = lambda name: f"/admin/static/{name}"
    html = environment.get_template("rules/list.html").render(
        rows=[],
        total=0,
        in_force=0,
        with_problems=0,
        search="",
        state="",
        states=STATES,
        saved=None,
        deleted=None,
        example_yaml=rule_as_text(example),
        example_json=json.dumps(example),
        base="/admin/rules",
        csrf_token="",
    )
    empty = html[html.index('id="rules-empty"') :]
    assert "No rules yet" in empty and 'href="/admin/rules/new"' in empty
    assert "route: small" in empty and "/admin/api/rules" in empty
