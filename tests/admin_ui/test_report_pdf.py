"""The report PDF read back with poppler: its text holds the title, range, workspace, when it was
made, "Page N of M" on every page and the headline figures as the console writes them; the long
table keeps every row, in order, with its header on each page it runs onto; the charts are
vector drawings (no raster image in the file) whose legends are text. Every page is kept as a
PNG under test-artifacts/reports/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from admin_ui.report_pdf import render_pdf
from tests.poppler import page_count, page_pictures, pdf_text, raster_images
from tests.report_document_sample import LONG_TABLE_ROWS, key_row, sample_document

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"


def number_in(text: str, written: str) -> bool:
    """`written` stands in `text` as a whole number: not inside a longer one."""
    return re.search(rf"(?<![\d.,$]){re.escape(written)}(?![\d,]|\.\d)", text) is not None


@pytest.fixture(scope="module")
def pdf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "weekly-summary.pdf"
    path.write_bytes(render_pdf(sample_document()))
    page_pictures(path, ARTIFACTS, prefix="weekly-summary")
    return path


def test_the_file_is_a_pdf_of_several_pages(pdf_file: Path) -> None:
    assert pdf_file.read_bytes().startswith(b"%PDF-")
    assert page_count(pdf_file) >= 3
    assert sorted(p.name for p in ARTIFACTS.glob("weekly-summary-*.png")) == sorted(
        f"weekly-summary-{n}.png" for n in range(1, page_count(pdf_file) + 1)
    )


def test_the_first_page_names_the_report_its_range_workspace_and_time(pdf_file: Path) -> None:
    first = pdf_text(pdf_file, 1)
    lines = [" ".join(line.split()) for line in first.splitlines() if line.strip()]
    assert lines[0] == "Weekly summary"
    assert "Workspace Acme Production" in lines
    # Monday 00:00 to the next Monday 00:00 in Berlin: the days Nov 30 to Dec 6, both included.
    assert "Range 2026-11-30 to 2026-12-06 (Europe/Berlin)" in lines
    assert "Made 2026-12-07 07:15 CET" in lines


def test_every_page_is_numbered_out_of_the_total(pdf_file: Path) -> None:
    total = page_count(pdf_file)
    for page in range(1, total + 1):
        footer = pdf_text(pdf_file, page).strip().splitlines()[-1]
        assert re.search(rf"\bPage {page} of {total}$", footer), footer


def test_headline_figures_read_as_the_console_writes_them(pdf_file: Path) -> None:
    text = pdf_text(pdf_file, 1)
    # money exact to the digit, counts grouped, a rate in percent, a latency in ms
    for written in ("$1,482.0375", "264,913", "1.7 %", "2,842 ms", "91,735,208"):
        assert number_in(text, written), written
    # the change against the previous period and what it was
    assert re.search(r"\+19\.9 % +vs \$1,236\.50\b", text)
    assert re.search(r"-6\.0 % +vs 281,774\b", text)
    assert re.search(r"\+0\.5 pp +vs 1\.2 %", text), "a rate changes in percentage points"
    assert re.search(r"\+8\.9 % +vs 2,610 ms", text)
    assert re.search(r"— +no previous period", text)


def test_the_long_table_keeps_every_row_in_order_across_pages(pdf_file: Path) -> None:
    pages = [pdf_text(pdf_file, n) for n in range(1, page_count(pdf_file) + 1)]
    found: list[tuple[int, str]] = []
    for number, text in enumerate(pages, start=1):
        for line in text.splitlines():
            if re.match(r"\s*key-\d{3}\b", line):
                found.append((number, " ".join(line.split())))
    expected = [
        f"{key} {model} {requests:,} "
        for key, model, requests, _, _ in (key_row(index) for index in range(LONG_TABLE_ROWS))
    ]
    assert [
        line[: len(start)] for (_, line), start in zip(found, expected, strict=False)
    ] == expected
    assert len(found) == LONG_TABLE_ROWS
    lines = {line for _, line in found}
    # cost exact to the digit, latency in ms, right where the row is
    assert "key-009 gpt-4o 4,667 $90.00 584 ms" in lines
    assert "key-042 gpt-4o 3,446 $63.1875 963 ms" in lines
    assert "key-089 gemini-2.5-flash 1,707 $25.00 1,504 ms" in lines
    spanned = sorted({number for number, _ in found})
    assert len(spanned) >= 2, "the table is long enough to run over pages"
    for number in spanned:
        assert re.search(
            r"Key +Top model +Requests +Cost \(USD\) +p95 latency \(ms\)", pages[number - 1]
        )


def test_charts_are_vector_drawings_with_their_legends_as_text(pdf_file: Path) -> None:
    assert raster_images(pdf_file) == []
    text = pdf_text(pdf_file)
    assert re.search(r"gpt-4o +\$504\.00 +claude-sonnet-4 +\$364\.00", text)
    assert re.search(r"gpt-4o +\$612\.44", text), "the bar chart's value"
    assert re.search(r"accounts/fireworks/models\S*\.\.\. +\$0\.037\b", text), "a name cut to fit"
    assert re.search(r"mock-gpt +- *$", text, re.MULTILINE), "a series without data"
    assert "Times on the axis in UTC" in text
    assert "No anomaly and no alert in this period." in text


def test_the_same_document_gives_the_same_bytes() -> None:
    assert render_pdf(sample_document()) == render_pdf(sample_document())
