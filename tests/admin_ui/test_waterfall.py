"""The span waterfall: tree order, depth, scale, ticks and what the SVG says."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from admin_ui import waterfall

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def span(
    span_id: str,
    start_ms: float,
    end_ms: float,
    parent: str | None = None,
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name or span_id,
        "component": "gateway",
        "started_at": T0 + timedelta(milliseconds=start_ms),
        "ended_at": T0 + timedelta(milliseconds=end_ms),
        "duration_ms": end_ms - start_ms,
        "status": extra.pop("status", "ok"),
        "attributes": extra.pop("attributes", {}),
        "events": [],
    }


def test_spans_are_nested_by_parent_and_ordered_by_start() -> None:
    spans = [
        span("root", 0, 100, parent="callers-span"),  # the caller's span is not in the trace
        span("b", 40, 90, "root"),
        span("a", 5, 30, "root"),
        span("a1", 10, 20, "a"),
        span("b1", 45, 80, "b"),
        span("b1x", 50, 60, "b1"),
    ]
    rows = waterfall.arrange(spans)
    assert [(row.span["span_id"], row.depth) for row in rows] == [
        ("root", 0),
        ("a", 1),
        ("a1", 2),
        ("b", 1),
        ("b1", 2),
        ("b1x", 3),
    ]
    assert [row.start_ms for row in rows] == pytest.approx([0, 5, 10, 40, 45, 50])
    assert rows[3].length_ms == pytest.approx(50)


def test_orphans_and_loops_are_still_drawn_once() -> None:
    spans = [
        span("x", 0, 10, "y"),
        span("y", 1, 9, "x"),  # a loop: neither is anyone's root
        span("self", 2, 3, "self"),
        span("lost", 4, 5, "never-recorded"),
    ]
    rows = waterfall.arrange(spans)
    assert sorted(row.span["span_id"] for row in rows) == ["lost", "self", "x", "y"]
    depth = {row.span["span_id"]: row.depth for row in rows}
    assert depth["self"] == 0 and depth["lost"] == 0
    assert {depth["x"], depth["y"]} == {0, 1}


def test_times_may_come_as_iso_text() -> None:
    spans = [span("a", 0, 10), span("b", 2.5, 4, "a")]
    for item in spans:
        item["started_at"] = item["started_at"].isoformat().replace("+00:00", "Z")
        item["ended_at"] = item["ended_at"].isoformat().replace("+00:00", "Z")
    rows = waterfall.arrange(spans)
    assert rows[1].start_ms == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("total", "step"),
    [(218, 50), (1.3, 0.2), (3.3, 0.5), (9, 2), (12_000, 2000), (100, 20), (0, 1)],
)
def test_tick_steps_are_round(total: float, step: float) -> None:
    assert waterfall.nice_step(total) == pytest.approx(step)


def test_ticks_cover_the_trace_without_passing_it() -> None:
    assert waterfall.ticks(218) == [0, 50, 100, 150, 200]
    ticks = waterfall.ticks(1.3)
    assert ticks[0] == 0 and ticks[-1] <= 1.3 and len(ticks) == 7
    assert waterfall.tick_label(0.4, 0.2) == "0.4 ms"
    assert waterfall.tick_label(150, 50) == "150 ms"
    assert waterfall.tick_label(4000, 2000) == "4 s"
    assert waterfall.tick_label(1500, 500) == "1500 ms"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_the_svg_draws_every_span_to_scale() -> None:
    spans = [
        span("root", 0, 200),
        span("auth", 0, 1, "root"),
        span("provider", 50, 150, "root", name="provider.chat"),
    ]
    svg = parse(str(waterfall.render(spans)))
    rows = svg.findall(f"{SVG}g[@class='wf-row']")
    assert [row.get("data-span-id") for row in rows] == ["root", "auth", "provider"]
    bars = {
        row.get("data-span-id"): next(
            rect for rect in row.findall(f"{SVG}rect") if "wf-bar" in (rect.get("class") or "")
        )
        for row in rows
    }
    root_width = float(bars["root"].get("width") or 0)
    provider = bars["provider"]
    assert root_width == pytest.approx(waterfall.PLOT_WIDTH)
    assert float(provider.get("width") or 0) == pytest.approx(root_width / 2, abs=0.02)
    offset = float(provider.get("x") or 0) - float(bars["root"].get("x") or 0)
    assert offset == pytest.approx(root_width / 4, abs=0.02)
    # a span too short to see still gets a visible bar
    assert float(bars["auth"].get("width") or 0) >= waterfall.MIN_BAR_WIDTH
    ticks = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "wf-tick"]
    assert ticks == ["0", "50 ms", "100 ms", "150 ms", "200 ms"]
    names = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "wf-name"]
    assert names == ["root", "auth", "provider.chat"]
    label = svg.get("aria-label") or ""
    assert "3 spans" in label and "200 ms" in label


def test_children_are_indented_and_errors_marked() -> None:
    spans = [span("root", 0, 10), span("child", 1, 5, "root", status="error")]
    svg = parse(str(waterfall.render(spans)))
    names = [text for text in svg.iter(f"{SVG}text") if text.get("class") == "wf-name"]
    assert float(names[1].get("x") or 0) - float(names[0].get("x") or 0) == waterfall.INDENT
    classes = [rect.get("class") for rect in svg.iter(f"{SVG}rect")]
    assert "wf-bar wf-bar-error" in classes
    assert "wf-bar wf-bar-root" in classes


def test_the_hover_title_lists_timing_attributes_and_marks() -> None:
    spans = [
        span("root", 0, 100),
        span(
            "p",
            20,
            80,
            "root",
            name="provider.chat",
            attributes={"gen_ai.request.model": "<gpt>", "tokens": 12, "error.type": None},
        ),
    ]
    marks = {"p": [waterfall.Mark(offset_ms=15, label="first token")]}
    markup = str(waterfall.render(spans, marks))
    svg = parse(markup)
    titles = [title.text or "" for title in svg.iter(f"{SVG}title")]
    assert len(titles) == 2
    hover = titles[1]
    assert "provider.chat (gateway)" in hover
    assert "60.0 ms · starts at +20.0 ms · ok" in hover
    assert "gen_ai.request.model = <gpt>" in hover  # escaped in the markup, whole in the text
    assert "&lt;gpt&gt;" in markup
    assert "tokens = 12" in hover
    assert "error.type" not in hover  # empty attributes are left out
    assert "first token: +15.0 ms" in hover
    lines = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "wf-mark"]
    assert len(lines) == 1


def test_long_names_are_cut_to_their_column() -> None:
    long_name = "a-very-long-span-name-" * 6
    svg = parse(str(waterfall.render([span("s", 0, 1, name=long_name)])))
    (name,) = [text.text or "" for text in svg.iter(f"{SVG}text") if text.get("class") == "wf-name"]
    assert name.endswith("…")
    assert len(name) * waterfall.CHAR_WIDTH <= waterfall.LABEL_WIDTH + waterfall.CHAR_WIDTH


def test_no_spans_draw_nothing() -> None:
    assert str(waterfall.render([])) == ""
    assert waterfall.arrange([]) == []


def test_the_svg_is_compact() -> None:
    spans = [span("root", 0, 3.3333333)]
    markup = str(waterfall.render(spans))
    assert not re.search(r"\d\.\d{3,}", markup.split("<title>")[0])
