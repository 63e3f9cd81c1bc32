"""Conditions on JSON columns, written for each database.

Postgres compares JSONB with containment (`@>`), which the GIN indexes of migration 0008 serve;
SQLite walks the stored JSON text with `json_each`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

Condition = ColumnElement[bool]


def _jsonb(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.type_coerce(column, JSONB)


def _each(column: sa.ColumnElement[Any]) -> Any:
    return sa.func.json_each(column).table_valued("key", "value", "type")


def array_holds(column: sa.ColumnElement[Any], value: str, dialect: str) -> Condition:
    """The JSON array in `column` has the string `value` among its items."""
    if dialect == "postgresql":
        return _jsonb(column).contains([value])
    each = _each(column)
    return sa.exists().select_from(each).where(each.c.value == value, each.c.type == "text")


def array_holds_all(
    column: sa.ColumnElement[Any], values: Sequence[str], dialect: str
) -> Condition:
    if dialect == "postgresql":
        return _jsonb(column).contains(list(values))
    return sa.and_(*(array_holds(column, value, dialect) for value in values))


def array_holds_any(
    column: sa.ColumnElement[Any], values: Sequence[str], dialect: str
) -> Condition:
    if dialect == "postgresql":
        return sa.or_(*(_jsonb(column).contains([value]) for value in values))
    each = _each(column)
    return sa.exists().select_from(each).where(each.c.value.in_(values), each.c.type == "text")


def object_has_key(column: sa.ColumnElement[Any], key: str, dialect: str) -> Condition:
    if dialect == "postgresql":
        return _jsonb(column).has_key(key)
    each = _each(column)
    return sa.exists().select_from(each).where(each.c.key == key)


_NOT_A_LITERAL = object()


def _json_literal(text: str) -> Any:
    """What `text` reads as in JSON when that is a number, a boolean or null."""
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return _NOT_A_LITERAL
    return value if value is None or isinstance(value, bool | int | float) else _NOT_A_LITERAL


def object_value_is(column: sa.ColumnElement[Any], key: str, text: str, dialect: str) -> Condition:
    """The JSON object in `column` maps `key` to the string `text`, or to the number, boolean or
    null that `text` spells (`5`, `true`, `null`)."""
    literal = _json_literal(text)
    if dialect == "postgresql":
        matches = [_jsonb(column).contains({key: text})]
        if literal is not _NOT_A_LITERAL:
            matches.append(_jsonb(column).contains({key: literal}))
        return sa.or_(*matches)
    each = _each(column)
    options = [sa.and_(each.c.type == "text", each.c.value == text)]
    if literal is None:
        options.append(each.c.type == "null")
    elif isinstance(literal, bool):
        options.append(each.c.type == ("true" if literal else "false"))
    elif literal is not _NOT_A_LITERAL:
        options.append(sa.and_(each.c.type.in_(("integer", "real")), each.c.value == literal))
    return sa.exists().select_from(each).where(each.c.key == key, sa.or_(*options))
