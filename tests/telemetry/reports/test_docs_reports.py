"""docs/reports.md says what the code does: its cron examples parse, its error example is the
parser's message, its CSV excerpt has the renderer's header, its ranges and sections are the
code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemetry.reports.cron import CronError, parse_cron
from telemetry.reports.definition import weekly_summary
from telemetry.reports.document import SECTION_NAMES
from telemetry.reports.ranges import RANGES
from telemetry.reports.render_csv import HEADER

DOC = (Path(__file__).parents[3] / "docs" / "reports.md").read_text()


def test_the_cron_examples_parse() -> None:
    examples = re.findall(r"`([0-9*/,\-a-z]+(?: [0-9*/,\-a-z]+){4})`", DOC)
    examples += re.findall(r'"schedule": "([^"]+)"', DOC)
    assert {"30 2 * * *", "0 7 * * mon"} <= set(examples)
    refused = {"0 0 30 feb *", "0 25 * * mon"}  # the page's examples of what is refused
    for example in examples:
        if example in refused:
            continue
        parse_cron(example)
    for example in refused:
        assert example in examples
        with pytest.raises(CronError):
            parse_cron(example)


def test_the_error_example_is_the_parsers() -> None:
    try:
        parse_cron("0 25 * * mon")
    except CronError as error:
        assert f"schedule: {error}" in DOC
    else:
        raise AssertionError("an hour of 25 was taken")


def test_the_csv_excerpt_and_the_tables_are_the_codes() -> None:
    assert "```csv\n" + ",".join(HEADER) + "\n" in DOC
    for name in (*RANGES, *SECTION_NAMES):
        assert f"| `{name}` |" in DOC, name
    for section in weekly_summary("w", "d").sections:
        assert f"`{section}`" in DOC.split("## The weekly summary")[1]
