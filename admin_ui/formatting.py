"""How the console writes numbers, money, ids, times and statuses: Jinja filters.

Plain functions return text; the few that return markup (`time_tag`, `status_badge`, `short_id`)
escape what they are given. Missing values read "—" everywhere, so a table never shows "None".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup

MISSING = "—"
SHORT_ID_LENGTH = 8


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ms(value: Any) -> str:
    """Milliseconds, with the precision a reader can use: 0.04 ms, 12.3 ms, 1,234 ms."""
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number) < 10:
        return f"{number:.2f} ms"
    if abs(number) < 100:
        return f"{number:.1f} ms"
    return f"{number:,.0f} ms"


def microseconds(value: Any) -> str:
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number) >= 1000:
        return ms(number / 1000)
    return f"{number:.1f} µs"


def seconds(value: Any) -> str:
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number) < 10:
        return f"{number:.2f} s"
    if abs(number) < 60:
        return f"{number:.1f} s"
    minutes, rest = divmod(round(number), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def duration(value: Any) -> str:
    """A duration given in milliseconds, in ms below a second and in seconds above."""
    number = _number(value)
    if number is None:
        return MISSING
    return ms(number) if abs(number) < 1000 else seconds(number / 1000)


def tokens(value: Any) -> str:
    """A token count with thousands separators (the unit is the column's)."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{round(number):,}"


def rate(value: Any, unit: str = "tok/s") -> str:
    number = _number(value)
    if number is None:
        return MISSING
    if abs(number) < 10:
        return f"{number:.2f} {unit}"
    if abs(number) < 100:
        return f"{number:.1f} {unit}"
    return f"{number:,.0f} {unit}"


def dollars(value: Any) -> str:
    """US dollars exactly as stored, at least to the cent: $0.000123, $1.50, $1,234.00.

    Money is a Decimal (or its text); it never passes through a float, so a cost of a fraction
    of a cent is shown digit for digit.
    """
    if value is None or isinstance(value, bool | float):
        return MISSING
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return MISSING
    if not amount.is_finite():
        return MISSING
    sign = "-" if amount < 0 else ""
    whole, _, fraction = format(abs(amount).normalize(), "f").partition(".")
    return f"{sign}${int(whole):,}.{fraction.ljust(2, '0')}"


def count(value: Any) -> str:
    number = _number(value)
    return MISSING if number is None else f"{round(number):,}"


def number(value: Any) -> str:
    """A plain number: whole ones with separators, others to three significant digits."""
    number = _number(value)
    if number is None:
        return MISSING
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:.3g}"


def short_id(value: Any, length: int = SHORT_ID_LENGTH) -> str:
    """The end of an id. Ours are time-ordered: their first digits are the clock and shared by
    every id minted within days, so the last ones are what tell two apart."""
    if value is None or value == "":
        return MISSING
    text = str(value)
    return text if len(text) <= length + 1 else "…" + text[-length:]


def utc_text(value: datetime | None, *, precise: bool = False) -> str:
    """`2026-12-06 13:55:06 UTC` (with milliseconds when `precise`)."""
    if value is None:
        return MISSING
    moment = _utc(value)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if precise:
        shown += f".{moment.microsecond // 1000:03d}"
    return shown + " UTC"


def iso_utc(value: datetime) -> str:
    """ISO 8601 with milliseconds and a Z, as `<time datetime>` wants it."""
    moment = _utc(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago: `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago` (or `in …`)."""
    if value is None:
        return MISSING
    reference = now or datetime.now(UTC)
    delta = (_utc(reference) - _utc(value)).total_seconds()
    later = delta < 0
    delta = abs(delta)
    if delta < 5:
        return "just now"
    if delta < 60:
        amount = f"{int(delta)} s"
    elif delta < 3600:
        amount = f"{int(delta // 60)} min"
    elif delta < 86400:
        amount = f"{int(delta // 3600)} h"
    else:
        amount = f"{int(delta // 86400)} d"
    return f"in {amount}" if later else f"{amount} ago"


def short_utc_text(value: datetime, now: datetime | None = None) -> str:
    """`15:22:48 UTC` for today (in UTC), `2026-12-05 15:22 UTC` before."""
    moment = _utc(value)
    today = _utc(now or datetime.now(UTC)).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def time_tag(value: datetime | None, style: str = "absolute") -> Markup:
    """`<time>` with the UTC instant; the page's script rewrites the text in the viewer's zone
    and keeps UTC in the hover. `style` "relative" shows "5 min ago"; "short" only the time of
    day for today (lists)."""
    if value is None:
        return Markup(MISSING)
    if style == "relative":
        text = relative_time(value)
    elif style == "short":
        text = short_utc_text(value)
    else:
        text = utc_text(value)
    return Markup('<time datetime="{}" title="{}" data-style="{}">{}</time>').format(
        iso_utc(value), utc_text(value, precise=True), style, text
    )


STATUS_TONES: dict[str, str] = {
    "ok": "ok",
    "warning": "warning",
    "error": "error",
    "neutral": "neutral",
    "denied": "warning",
    "cancelled": "neutral",
    "block": "error",
    "mask": "warning",
    "log": "neutral",
    "hit": "ok",
    "miss": "neutral",
}


def status_tone(value: Any) -> str:
    """ok | warning | error | neutral: which status colour a value takes."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 499:
            return "neutral"
        if value >= 500:
            return "error"
        if value >= 400:
            return "warning"
        return "ok"
    return STATUS_TONES.get(str(value).lower(), "neutral")


def status_badge(value: Any, label: str | None = None) -> Markup:
    if value is None:
        return Markup(MISSING)
    return Markup('<span class="badge badge-{}">{}</span>').format(
        status_tone(value), label if label is not None else value
    )


def id_chip(value: Any, label: str = "id", length: int = SHORT_ID_LENGTH) -> Markup:
    """A shortened id with the whole value on hover, and a copy button the script reveals."""
    if value is None or value == "":
        return Markup(MISSING)
    text = str(value)
    return Markup(
        '<span class="id-chip"><code title="{full}">{short}</code>'
        '<button type="button" class="copy" data-copy="{full}" aria-label="Copy {label}" '
        'title="Copy {label}" hidden>copy</button></span>'
    ).format(full=text, short=short_id(text, length), label=label)


def pretty_json(value: Any) -> str:
    """Indented JSON for a `<pre>`; text that holds JSON is parsed and indented too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


FILTERS: dict[str, Callable[..., Any]] = {
    "ms": ms,
    "us": microseconds,
    "seconds": seconds,
    "duration": duration,
    "tokens": tokens,
    "rate": rate,
    "dollars": dollars,
    "count": count,
    "number": number,
    "short_id": short_id,
    "utc": utc_text,
    "relative": relative_time,
    "time_tag": time_tag,
    "status_badge": status_badge,
    "status_tone": status_tone,
    "id_chip": id_chip,
    "pretty_json": pretty_json,
    "compact_json": compact_json,
}
