"""The `insights` report section over a planted week (`tests.telemetry.insights_history`) on
SQLite and Postgres: its figures and tables hold what was planted in the report's workspace, and
its CSV, JSON and PDF (read back with poppler) say the same."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.report_pdf import render_pdf
from telemetry.reports.build import build_report
from telemetry.reports.definition import weekly_summary
from telemetry.reports.document import ReportDocument, Table
from telemetry.reports.render_csv import render_csv
from telemetry.reports.render_json import render_json
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.poppler import pdf_text
from tests.telemetry.insights_history import END, START, Planted, plant_insights


async def _report(engine: AsyncEngine, workspace: str) -> ReportDocument:
    return await build_report(
        engine,
        workspace_id=workspace,
        start=START,
        end=END,
        sections=("summary", "insights"),
        title="Weekly summary",
        time_zone="UTC",
        now=END + timedelta(hours=8),
    )


def _table(document: ReportDocument, name: str) -> Table:
    (section,) = (s for s in document.sections if s.name == "insights")
    return next(t for t in section.tables if t.name == name)


def test_the_weekly_summary_holds_the_insights() -> None:
    assert "insights" in weekly_summary("w", "d").sections


async def test_the_section_holds_each_insight_of_the_workspace(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    planted: Planted = await plant_insights(engine, DEFAULT_WORKSPACE_ID, "ws-other")
    document = await _report(engine, DEFAULT_WORKSPACE_ID)
    (section,) = (s for s in document.sections if s.name == "insights")
    figures = {f.name: f.value for f in section.figures}
    assert figures["cheaper_model_saving"] == Decimal("3.86")
    assert figures["repeats"] == 4
    assert figures["repeats_saving"] == Decimal("0.04")
    assert (figures["max_tokens_flagged"], figures["errors"], figures["error_groups"]) == (1, 8, 2)

    cheaper = _table(document, "cheaper_models")
    first = dict(zip((c.name for c in cheaper.columns), cheaper.rows[0], strict=True))
    assert (first["current"], first["candidate"], first["verdict"]) == (
        "gpt-4o",
        "gpt-4o-mini",
        "equal quality",
    )
    assert (first["current_scores"], first["candidate_scores"]) == (40, 40)
    assert first["workload"] == "assistant · helpfulness"
    assert first["difference_low"] is not None and -2 < float(first["difference_low"]) < -1
    assert {row[2] for row in cheaper.rows} == {"gpt-4o-mini", "cheap-bad", "tiny"}
    assert first["monthly_saving"] == Decimal("3.86")
    repeats = _table(document, "repeats")
    assert [row[1:4] for row in repeats.rows] == [("faq", 5, 4)]
    assert repeats.rows[0][-1] in planted.faq_traces
    limits = _table(document, "max_tokens")
    assert [(row[0], row[6]) for row in limits.rows] == [("summariser", "yes"), ("writer", "no")]
    errors = _table(document, "errors")
    assert [(row[0], row[1], row[3]) for row in errors.rows] == [
        ("openai", "rate_limit", 6),
        ("anthropic", "overloaded_error", 2),
    ]

    lines = list(csv.reader(io.StringIO(render_csv(document).decode())))
    assert ["insights", "repeats", "1", "saving", "0.04", "USD"] in lines
    assert ["insights", "errors", "1", "count", "6", "requests"] in lines
    body = json.loads(render_json(document))
    (made,) = (s for s in body["sections"] if s["name"] == "insights")
    assert [t["name"] for t in made["tables"]] == [
        "cheaper_models",
        "repeats",
        "max_tokens",
        "errors",
    ]

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(document))
    text = pdf_text(pdf)
    assert "Insights" in text
    assert "Cheaper models of equal quality" in text
    words = " ".join(text.split())
    assert "gpt-4o-mini" in words and "summariser" in words and "$3.86" in words
    assert "Rate limit reached for <id>" in words


async def test_an_empty_workspace_says_what_would_fill_the_section(engine: AsyncEngine) -> None:
    document = await _report(engine, "ws-nobody")
    (section,) = (s for s in document.sections if s.name == "insights")
    assert all(not table.rows for table in section.tables)
    text = " ".join(section.notes)
    assert "evaluator" in text and "store_content" in text and "max_tokens" in text
    assert "No provider call failed" in text
