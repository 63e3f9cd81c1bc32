"""A report as a PDF: `render_pdf(document)`, with fpdf2 (docs/reports.md says why).

Page one opens with the title, the workspace, the range and when the report was made, both in
the report's time zone. Each section follows under its heading: headline figures as tiles with
the change against the previous period, charts drawn by the console's own SVG code and embedded
as vector graphics, tables with right-aligned numbers whose header is repeated on every page a
long table runs onto, and the section's notes. Every page carries "Page N of M" in its footer.

Text is set in the PDF's built-in Helvetica (no font file, nothing fetched), so it stays
extractable; the few characters it lacks are written as their nearest kin (`pdf_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from typing import Final, NamedTuple
from xml.etree import ElementTree

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from admin_ui.report_pdf_charts import chart_svg
from admin_ui.report_pdf_svg import LIGHT, PDF_ENCODING, pdf_text
from admin_ui.report_pdf_values import (
    column_heading,
    figure_change,
    is_number,
    previous_text,
    value_text,
)
from telemetry.reports.document import Chart, Figure, ReportDocument, Section, Table
from telemetry.reports.period_text import local_time_text, range_text

MARGIN: Final = 15.0
PAGE_WIDTH: Final = 210.0
CONTENT: Final = PAGE_WIDTH - 2 * MARGIN
TILES_PER_ROW: Final = 3
TILE_GAP: Final = 4.0
TILE_HEIGHT: Final = 23.0
CHART_PIXELS: Final = 720
"""The width the console draws a chart at; the PDF scales it to the page's text width."""
TABLE_FONTS: Final = (8.0, 7.0, 6.0)
"""A table too wide for its words at the first size is set in the next."""
TABLE_LINE: Final = 4.4
CELL_PADDING: Final = 1.6
MIN_TABLE_START: Final = 30.0
"""A table starts on a new page when less than this (a title, header and two rows) is left."""

TEXT: Final = "#1a1d21"
BORDER: Final = "#e1e4e8"
SURFACE_2: Final = "#f0f2f5"
FONT: Final = "helvetica"


class _ReportPDF(FPDF):
    def __init__(self, document: ReportDocument) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = PDF_ENCODING
        self.document = document
        self.set_margins(MARGIN, MARGIN + 4, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN + 3)
        self.set_title(pdf_text(document.title))
        self.set_author("Steerway")
        self.set_creator("Steerway")
        self.set_creation_date(document.made_at)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(MARGIN - 5)
        self._colour(LIGHT["muted"])
        self.set_font(FONT, size=7.5)
        run = f"{self.document.title} · {self.document.workspace_name}"
        self.cell(CONTENT * 0.6, 4, pdf_text(run))
        when = range_text(self.document.start, self.document.end, self.document.time_zone)
        self.cell(CONTENT * 0.4, 4, pdf_text(when), align="R")
        self.set_y(MARGIN + 4)

    def footer(self) -> None:
        self.set_y(-MARGIN + 2)
        self._colour(LIGHT["muted"])
        self.set_font(FONT, size=7.5)
        self.cell(CONTENT / 2, 4, pdf_text(f"Steerway · {self.document.workspace_name}"))
        self.cell(CONTENT / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")

    def _colour(self, colour: str) -> None:
        self.set_text_color(colour)

    def room(self) -> float:
        return self.page_break_trigger - self.get_y()

    def keep(self, height: float) -> None:
        """Start a new page unless `height` fits on this one."""
        if height > self.room():
            self.add_page()


def _title_block(pdf: _ReportPDF, document: ReportDocument) -> None:
    pdf._colour(TEXT)
    pdf.set_font(FONT, style="B", size=20)
    pdf.multi_cell(CONTENT, 9, pdf_text(document.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    facts = (
        ("Workspace", document.workspace_name),
        ("Range", range_text(document.start, document.end, document.time_zone)),
        ("Made", local_time_text(document.made_at, document.time_zone)),
    )
    for name, text in facts:
        pdf._colour(LIGHT["muted"])
        pdf.set_font(FONT, size=9.5)
        pdf.cell(24, 5.5, name)
        pdf._colour(TEXT)
        pdf.cell(CONTENT - 24, 5.5, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_draw_color(BORDER)
    pdf.set_line_width(0.3)
    pdf.line(MARGIN, pdf.get_y(), MARGIN + CONTENT, pdf.get_y())
    pdf.ln(4)


def _section_heading(pdf: _ReportPDF, section: Section, first_item: float) -> None:
    """The heading, on the page its first item starts on."""
    pdf.keep(11 + first_item)
    pdf._colour(TEXT)
    pdf.set_font(FONT, style="B", size=13)
    pdf.cell(CONTENT, 8, pdf_text(section.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(LIGHT["accent"])
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, pdf.get_y(), MARGIN + 14, pdf.get_y())
    pdf.ln(3)


def _tile(pdf: _ReportPDF, figure: Figure, x: float, y: float, width: float) -> None:
    pdf.set_draw_color(BORDER)
    pdf.set_fill_color(LIGHT["surface"])
    pdf.set_line_width(0.25)
    pdf.rect(x, y, width, TILE_HEIGHT, style="DF", round_corners=True, corner_radius=1.5)
    inner = width - 6
    pdf.set_xy(x + 3, y + 2.5)
    pdf._colour(LIGHT["muted"])
    pdf.set_font(FONT, size=8)
    pdf.cell(inner, 4, pdf_text(figure.title))
    pdf.set_xy(x + 3, y + 7.5)
    pdf._colour(TEXT)
    pdf.set_font(FONT, style="B", size=14)
    pdf.cell(inner, 7, pdf_text(value_text(figure.value, figure.unit)))
    pdf.set_xy(x + 3, y + 15.5)
    pdf.set_font(FONT, style="B", size=8)
    change = pdf_text(figure_change(figure))
    pdf._colour(LIGHT["text-2"])
    pdf.cell(pdf.get_string_width(change) + 1.5, 4, change)
    pdf._colour(LIGHT["muted"])
    pdf.set_font(FONT, size=7.5)
    before = "no previous period" if figure.previous is None else f"vs {previous_text(figure)}"
    pdf.cell(inner - pdf.get_string_width(change) - 1.5, 4, pdf_text(before))


def _figures(pdf: _ReportPDF, figures: Sequence[Figure]) -> None:
    width = (CONTENT - TILE_GAP * (TILES_PER_ROW - 1)) / TILES_PER_ROW
    for start in range(0, len(figures), TILES_PER_ROW):
        pdf.keep(TILE_HEIGHT + 2)
        top = pdf.get_y()
        for index, figure in enumerate(figures[start : start + TILES_PER_ROW]):
            _tile(pdf, figure, MARGIN + index * (width + TILE_GAP), top, width)
        pdf.set_xy(MARGIN, top + TILE_HEIGHT + TILE_GAP)
    pdf.ln(2)


def _sub_heading(pdf: _ReportPDF, text: str) -> None:
    pdf._colour(TEXT)
    pdf.set_font(FONT, style="B", size=10)
    pdf.cell(CONTENT, 6, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


class _Drawing(NamedTuple):
    chart: Chart
    svg: str
    height: float
    """On the page, in mm."""

    @property
    def caption(self) -> bool:
        return self.chart.kind == "line"

    @property
    def room(self) -> float:
        return 6 + self.height + (5 if self.caption else 0) + 2


def _drawing(chart: Chart, document: ReportDocument) -> _Drawing:
    svg = chart_svg(chart, start=document.start, end=document.end, width=CHART_PIXELS)
    height_px = float(ElementTree.fromstring(svg).get("height", "0"))
    return _Drawing(chart, svg, height_px * CONTENT / CHART_PIXELS)


def _chart(pdf: _ReportPDF, drawing: _Drawing) -> None:
    pdf.keep(drawing.room)
    _sub_heading(pdf, drawing.chart.title)
    height = drawing.height
    image = BytesIO(drawing.svg.encode("utf-8"))
    pdf.image(image, x=MARGIN, y=pdf.get_y(), w=CONTENT, h=height)
    pdf.set_y(pdf.get_y() + height + 1)
    if drawing.caption:
        pdf._colour(LIGHT["muted"])
        pdf.set_font(FONT, size=7)
        pdf.cell(CONTENT, 4, "Times on the axis in UTC", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _numeric_columns(table: Table) -> list[bool]:
    """Which columns hold numbers (right-aligned): those with a unit or a number in a row."""
    return [
        column.unit != "" or any(is_number(row[i]) for row in table.rows)
        for i, column in enumerate(table.columns)
    ]


def _column_widths(
    pdf: _ReportPDF, table: Table, cells: Sequence[Sequence[str]], size: float
) -> tuple[list[float], bool]:
    """Number columns as wide as their widest value (and heading, on one line when all fit);
    text columns share the rest in proportion to their widest value, none narrower than its
    longest word (so no word is broken) unless even that does not fit the page (the second
    value: whether it did)."""
    room = 2 * CELL_PADDING + 1

    def longest_word(text: str) -> float:
        return max((pdf.get_string_width(word) for word in text.split()), default=0.0)

    pdf.set_font(FONT, style="B", size=size)
    heading_word = [longest_word(text) + room for text in cells[0]]
    heading_line = [pdf.get_string_width(text) + room for text in cells[0]]
    pdf.set_font(FONT, size=size)
    rows = cells[1:]
    values = [
        max([0.0, *(pdf.get_string_width(row[i]) + room for row in rows)])
        for i in range(len(heading_word))
    ]
    words = [
        max([heading_word[i], *(longest_word(row[i]) + room for row in rows)])
        for i in range(len(heading_word))
    ]
    # a heading on one line when every column can have it so, else cut between its words
    whole = sum(max(h, v) for h, v in zip(heading_line, values, strict=True)) <= CONTENT
    heading = heading_line if whole else heading_word
    widest = [max(h, v) for h, v in zip(heading, values, strict=True)]
    least = [max(h, w) for h, w in zip(heading, words, strict=True)]
    numeric = _numeric_columns(table)
    fixed = sum(width for width, right in zip(widest, numeric, strict=True) if right)
    flexible = sum(width for width, right in zip(widest, numeric, strict=True) if not right)
    share = (CONTENT - fixed) / flexible if flexible else 1.0
    widths = [
        width if right else max(width * share, low)
        for width, low, right in zip(widest, least, numeric, strict=True)
    ]
    return [width * CONTENT / sum(widths) for width in widths], sum(least) <= CONTENT


def _table(pdf: _ReportPDF, table: Table, time_zone: str) -> None:
    pdf.keep(MIN_TABLE_START)
    _sub_heading(pdf, table.title)
    cells = [
        [pdf_text(column_heading(column.title, column.unit)) for column in table.columns],
        *(
            [
                pdf_text(value_text(value, column.unit, time_zone))
                for column, value in zip(table.columns, row, strict=True)
            ]
            for row in table.rows
        ),
    ]
    for size in TABLE_FONTS:
        widths, fits = _column_widths(pdf, table, cells, size)
        if fits:
            break
    numeric = _numeric_columns(table)
    pdf.set_font(FONT, size=size)
    pdf.set_draw_color(BORDER)
    pdf.set_line_width(0.2)
    pdf._colour(TEXT)
    with pdf.table(
        col_widths=widths,
        width=CONTENT,
        align="LEFT",
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD", color=LIGHT["text-2"], fill_color=SURFACE_2),
        line_height=TABLE_LINE,
        padding=(0.5, CELL_PADDING),
        repeat_headings=1,
        first_row_as_headings=True,
    ) as drawn:
        for row_cells in cells:
            row = drawn.row()
            for text, right in zip(row_cells, numeric, strict=True):
                row.cell(text, align="R" if right else "L")
    pdf.ln(4)


def _notes(pdf: _ReportPDF, notes: Sequence[str]) -> None:
    pdf._colour(LIGHT["text-2"])
    pdf.set_font(FONT, size=9)
    for note in notes:
        pdf.multi_cell(CONTENT, 4.8, pdf_text(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    pdf.ln(2)


def render_pdf(document: ReportDocument) -> bytes:
    """The document as PDF bytes; the same document gives the same pages."""
    pdf = _ReportPDF(document)
    pdf.add_page()
    _title_block(pdf, document)
    for section in document.sections:
        drawings = [_drawing(chart, document) for chart in section.charts]
        first_item = (
            TILE_HEIGHT
            if section.figures
            else drawings[0].room
            if drawings
            else MIN_TABLE_START
            if section.tables
            else 10.0
        )
        _section_heading(pdf, section, first_item)
        if section.figures:
            _figures(pdf, section.figures)
        for drawing in drawings:
            _chart(pdf, drawing)
        for table in section.tables:
            _table(pdf, table, document.time_zone)
        if section.notes:
            _notes(pdf, section.notes)
    return bytes(pdf.output())
