"""The SQLite writer's own timestamp text is the text SQLAlchemy stores for the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from telemetry.writers import _sqlite_timestamp

SQLALCHEMY = sa.DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 7, 22, 13, 20, 123456, tzinfo=UTC),
        datetime(2026, 12, 7, 22, 13, 20, tzinfo=UTC),  # no microseconds: still written out
        datetime.fromtimestamp(1_700_000_000.000001, UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_utc_time_is_stored_as_sqlalchemy_stores_its_naive_utc_time(value: datetime) -> None:
    assert SQLALCHEMY is not None
    assert _sqlite_timestamp(value) == SQLALCHEMY(value.replace(tzinfo=None))


def test_a_time_in_another_zone_is_stored_as_its_utc_instant() -> None:
    local = datetime(2026, 12, 7, 23, 13, 20, 5, tzinfo=timezone(timedelta(hours=1)))
    assert _sqlite_timestamp(local) == "2026-12-07 22:13:20.000005"


def test_a_naive_time_is_stored_as_given() -> None:
    naive = datetime(2026, 12, 7, 22, 13, 20, 5)
    assert SQLALCHEMY is not None
    assert _sqlite_timestamp(naive) == SQLALCHEMY(naive) == "2026-12-07 22:13:20.000005"
