"""The writer benchmark runs on both backends, and its variants do what they say."""

from __future__ import annotations

from telemetry import writers
from telemetry.escaping import escape_bundles


async def test_each_variant_writes_and_only_escaping_variants_spend_time_escaping(
    database_url: str,
) -> None:
    from benchmarks.writer import _rates

    rates, shares = await _rates(database_url, 2, 1, 8)
    assert all(len(values) == 2 and min(values) > 0 for values in rates.values())
    # A batch with a NUL is escaped on every backend (a walk of about 0.1 ms); switched off,
    # escaping is a plain copy of the list.
    assert min(shares["one NUL a batch"]) > max(shares["no escaping"])
    assert writers.escape_bundles is escape_bundles  # put back
