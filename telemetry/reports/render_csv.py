"""A report as one CSV file in long form: one line per value, with the header

    section,table,row,column,value,unit

Long form, not one block per table, because a spreadsheet's pivot table, pandas or `grep` read
it without knowing where each block starts, every value carries its unit, and the file keeps
one header whatever the sections. What the fields hold:

- the report itself: `report,meta,<title|workspace|workspace_id|start|end|time_zone|made_at>,
  value,<text>,`;
- a figure: `<section>,figures,<figure>,<value|previous|change_pct>,<number>,<unit>`;
- a table cell: `<section>,<table>,<row number from 1>,<column>,<value>,<unit>`, the row's
  label being its first column;
- a chart point: `<section>,chart:<chart>,<series>,<time>,<value>,<unit>`;
- a note: `<section>,notes,<number from 1>,text,<sentence>,`.

Money is exact (`12.5`), rates are ratios from 0 to 1 (unit `ratio`), times UTC ISO 8601. Text
that a spreadsheet would read as a formula starts with `'`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Final

from telemetry.reports.document import ReportDocument, Section
from telemetry.reports.values import time_text, value_text

CONTENT_TYPE: Final = "text/csv"
"""Always UTF-8 (the download says so in its `charset`)."""
HEADER: Final = ("section", "table", "row", "column", "value", "unit")
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = value_text(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _meta(document: ReportDocument) -> Iterator[tuple[object, ...]]:
    for name, value in (
        ("title", document.title),
        ("workspace", document.workspace_name),
        ("workspace_id", document.workspace_id or ""),
        ("start", time_text(document.start)),
        ("end", time_text(document.end)),
        ("time_zone", document.time_zone),
        ("made_at", time_text(document.made_at)),
    ):
        yield ("report", "meta", name, "value", value, "")


def _section(section: Section) -> Iterator[tuple[object, ...]]:
    name = section.name
    for figure in section.figures:
        yield (name, "figures", figure.name, "value", figure.value, figure.unit)
        if figure.previous is not None or figure.change_pct is not None:
            yield (name, "figures", figure.name, "previous", figure.previous, figure.unit)
            yield (name, "figures", figure.name, "change_pct", figure.change_pct, "pct")
    for table in section.tables:
        for number, row in enumerate(table.rows, start=1):
            for column, value in zip(table.columns, row, strict=True):
                yield (name, table.name, number, column.name, value, column.unit)
    for chart in section.charts:
        for series in chart.series:
            for point in series.points:
                yield (
                    name,
                    f"chart:{chart.name}",
                    series.name,
                    time_text(point.at),
                    point.value,
                    chart.unit,
                )
    for number, note in enumerate(section.notes, start=1):
        yield (name, "notes", number, "text", note, "")


def render_csv(document: ReportDocument) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    lines = [_meta(document), *(_section(section) for section in document.sections)]
    for part in lines:
        for line in part:
            writer.writerow([_cell(value) for value in line])
    return buffer.getvalue().encode()
