"""Markdown for the results: medians per target, pairwise ratios, overheads and checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.results import Check, ScenarioResult

README_START = "<!-- bench:latest:start -->"
README_END = "<!-- bench:latest:end -->"


def format_number(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def format_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1
) -> str:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scenario_table(result: ScenarioResult) -> str:
    names = list(result.cells)
    measured = [n for n in names if result.measured(n) is not None] if result.ratios else []
    primary = next(m for m in result.metrics if m.key == result.primary)
    header = [
        result.row_label,
        *(m.label for m in result.metrics),
        *(m.label for m in result.overheads),
    ]
    header += [f"{primary.label} ÷ {other}" for other in measured]
    rows: list[list[str]] = []
    for name in names:
        cell = result.cells[name]
        if result.measured(name) is None:
            reason = cell.unavailable or "no successful run"
            rows.append([name, reason] + [""] * (len(header) - 2))
            continue
        row = [name]
        row += [format_number(cell.median(m.key), m.digits) for m in result.metrics]
        for metric in result.overheads:
            value = None if name == result.baseline else result.overhead(name, metric.key)
            row.append(format_number(value, metric.digits))
        for other in measured:
            row.append("—" if other == name else format_ratio(result.ratio(name, other)))
        rows.append(row)
    return markdown_table(header, rows)


def scenario_section(result: ScenarioResult, level: int = 3) -> str:
    parts = [f"{'#' * level} {result.title}", "", result.description, "", scenario_table(result)]
    notes = list(result.notes)
    for name, cell in result.cells.items():
        notes += [f"{name}: {note}" for note in cell.notes]
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    return "\n".join(parts)


def checks_table(checks: Sequence[Check]) -> str:
    rows = [[check.name, f"**{check.verdict}**", check.detail] for check in checks]
    return markdown_table(["check", "verdict", "measured (median)"], rows, numeric_from=3)


@dataclass(frozen=True)
class Report:
    title: str
    command: str
    machine: list[tuple[str, str]]
    settings: list[tuple[str, str]]
    results: list[ScenarioResult]

    def checks(self) -> list[Check]:
        return [check for result in self.results for check in result.checks]

    def body(self, level: int = 2) -> str:
        h = "#" * level
        parts = [
            f"Command: `{self.command}`",
            "",
            f"{h} Machine",
            "",
            *(f"- {key}: {value}" for key, value in self.machine),
            "",
            f"{h} Settings",
            "",
            *(f"- {key}: {value}" for key, value in self.settings),
            "",
            f"{h} Checks",
            "",
            checks_table(self.checks()) if self.checks() else "No check applies to this run.",
            "",
            f"{h} Scenarios",
            "",
            "Values are medians over rounds. In a round every target runs once, one after the "
            "other; an overhead (`target - baseline`) and a ratio (`row ÷ column`, on the "
            "scenario's first metric) are computed within a round, then the median is taken.",
        ]
        for result in self.results:
            parts += ["", scenario_section(result, level + 1)]
        return "\n".join(parts) + "\n"

    def document(self) -> str:
        return f"# {self.title}\n\n{self.body()}"


def replace_marked_section(text: str, content: str) -> str:
    """Put `content` between the README markers, appending the markers when absent."""
    block = f"{README_START}\n{content.rstrip()}\n{README_END}"
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def update_readme(path: Path, report: Report, results_file: str) -> None:
    content = f"Latest full run: [{results_file}]({results_file}).\n\n{report.body(level=3)}"
    text = path.read_text() if path.exists() else ""
    path.write_text(replace_marked_section(text, content))
