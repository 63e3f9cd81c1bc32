"""The time range and step every panel of an analytics page shares, read from the page's URL.

- `last=1h|6h|24h|7d|30d|90d` (default 24h): the range ends at the end of the step that holds
  now, so its steps are whole and its last one is still filling; or
- `from` and `to` (ISO 8601, no zone meaning UTC, or epoch seconds): a fixed range, `to`
  defaulting to now. A preset `last` wins over `from`/`to`, so choosing a preset in the top bar
  leaves a custom range;
- `step`: seconds (`300`) or an amount and a unit (`5m`, `1h`, `1d`, `1w`); empty or `auto`:
  `telemetry.analytics.choose_step`. A step that would draw more than `MAX_POINTS` points falls
  back to the automatic one, with a notice.

The previous period, for the tiles' change, is the range of the same length just before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from telemetry import times
from telemetry.analytics import MAX_POINTS, choose_step

PRESETS: Final = (
    ("1h", "Last hour", 3600),
    ("6h", "Last 6 hours", 6 * 3600),
    ("24h", "Last 24 hours", 86400),
    ("7d", "Last 7 days", 7 * 86400),
    ("30d", "Last 30 days", 30 * 86400),
    ("90d", "Last 90 days", 90 * 86400),
)
DEFAULT_LAST: Final = "24h"
CUSTOM: Final = "custom"
"""The `last` of a range given by `from` and `to` (what the top bar's select shows)."""
STEPS: Final = (
    (60, "1 minute"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (3600, "1 hour"),
    (3 * 3600, "3 hours"),
    (6 * 3600, "6 hours"),
    (86400, "1 day"),
    (7 * 86400, "1 week"),
)
RANGE_PARAMETERS: Final = ("last", "from", "to", "step")
MAX_SPAN: Final = timedelta(days=800)
"""The longest custom range: a little over two years, at daily steps within `MAX_POINTS`."""

_AMOUNT: Final = re.compile(r"([0-9]{1,7})([smhdw]?)")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PRESET_SECONDS: Final = {value: seconds for value, _, seconds in PRESETS}
_PRESET_LABELS: Final = {value: label for value, label, _ in PRESETS}


class InvalidRange(ValueError):
    """A range or step the page cannot show; `parameter` names what to change."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def step_text(seconds: int) -> str:
    """A step as the URL writes it: `1w`, `2d`, `6h`, `15m`, or `90s`."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def step_label(seconds: int) -> str:
    known = dict(STEPS).get(seconds)
    if known is not None:
        return known
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            amount = seconds // size
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} seconds"


def per_step(seconds: int) -> str:
    """`per hour`, `per 15 minutes`: how often a chart's points come."""
    label = step_label(seconds)
    return f"per {label.removeprefix('1 ')}"


def read_step(raw: str) -> int | None:
    """The step of the URL in seconds; None for automatic."""
    text = raw.strip().lower()
    if text in ("", "auto"):
        return None
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidRange("step", "must be seconds or an amount and a unit: 300, 5m, 1h or 1d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 60 or seconds % 60:
        raise InvalidRange("step", "must be a whole number of minutes, at least 1m")
    return seconds


def _read_time(parameter: str, raw: str) -> datetime:
    text = raw.strip()
    try:
        if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,6})?", text):
            return times.from_epoch(float(text))
        return times.parse_iso_time(text)
    except times.InvalidTime as error:
        raise InvalidRange(
            parameter, f"must be an ISO 8601 time or epoch seconds ({error})"
        ) from None


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _aligned_end(now: datetime, step: int) -> datetime:
    return datetime.fromtimestamp(math.ceil(_epoch(now) / step) * step, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class PageRange:
    """One page's range and step. `start`/`end` are UTC; `step` is in seconds, resolved."""

    start: datetime
    end: datetime
    step: int
    last: str | None
    """The preset (`24h`), or None for a range given by `from` and `to`."""
    step_asked: int | None = None
    """The step the URL asked for and got; None: chosen from the range."""
    notices: tuple[str, ...] = ()
    """What the page changed of what the URL asked (a step with too many points)."""

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def points(self) -> int:
        return math.ceil(self.seconds / self.step)

    @property
    def custom(self) -> bool:
        return self.last is None

    @property
    def label(self) -> str:
        if self.last is not None:
            return _PRESET_LABELS.get(self.last, f"Last {self.last}")
        return f"{_short(self.start)} to {_short(self.end)} UTC"

    @property
    def step_label(self) -> str:
        return step_label(self.step)

    @property
    def per_step(self) -> str:
        return per_step(self.step)

    def previous(self) -> PageRange:
        """The range of the same length just before this one, at the same step."""
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start, last=None, notices=())

    def url_items(self) -> list[tuple[str, str]]:
        """The parameters that give this range again: `last` (a preset stays relative to
        now) or `from` and `to`, and `step` when one was asked for."""
        items = (
            [("last", self.last)]
            if self.last is not None
            else [("from", _iso(self.start)), ("to", _iso(self.end))]
        )
        if self.step_asked is not None:
            items.append(("step", step_text(self.step_asked)))
        return items

    def absolute_items(self) -> list[tuple[str, str]]:
        """`from`, `to` and `step` of exactly this range (what a download of the numbers
        on the page asks the API for)."""
        return [
            ("from", _iso(self.start)),
            ("to", _iso(self.end)),
            ("step", step_text(self.step)),
        ]


def _resolve_step(
    asked: int | None, start: datetime, end: datetime, notices: list[str]
) -> tuple[int, int | None]:
    automatic = choose_step(start, end)
    if asked is None:
        return automatic, None
    points = math.ceil((end - start).total_seconds() / asked)
    if points > MAX_POINTS:
        notices.append(
            f"A step of {step_label(asked)} gives {points:,} points for this range (at most "
            f"{MAX_POINTS:,}); the page uses {step_label(automatic)}."
        )
        return automatic, None
    return asked, asked


def read_page_range(
    parameters: Mapping[str, str] | Sequence[tuple[str, str]], now: datetime | None = None
) -> PageRange:
    """The range of a page's URL parameters (`InvalidRange` when they cannot give one)."""
    values: dict[str, str] = {}
    items = parameters.items() if isinstance(parameters, Mapping) else parameters
    for name, value in items:
        if name in RANGE_PARAMETERS and value.strip():
            values.setdefault(name, value.strip())
    now = (now or datetime.now(UTC)).astimezone(UTC)
    asked = read_step(values.get("step", ""))
    notices: list[str] = []
    last = values.get("last")
    if last is not None and last != CUSTOM:
        if last not in _PRESET_SECONDS:
            raise InvalidRange("last", "must be one of " + ", ".join(_PRESET_SECONDS))
        length = timedelta(seconds=_PRESET_SECONDS[last])
        step, chosen = _resolve_step(asked, now - length, now, notices)
        end = _aligned_end(now, step)
        return PageRange(end - length, end, step, last, chosen, tuple(notices))
    if "from" not in values and "to" not in values:
        if last == CUSTOM:
            raise InvalidRange("from", "a custom range needs 'from' (and 'to', or now)")
        return read_page_range([("last", DEFAULT_LAST), ("step", values.get("step", ""))], now)
    if "from" not in values:
        raise InvalidRange("from", "is needed with 'to'")
    start = _read_time("from", values["from"])
    end = _read_time("to", values["to"]) if "to" in values else now
    if end <= start:
        raise InvalidRange("to", "must be later than 'from'")
    if end - start > MAX_SPAN:
        raise InvalidRange("from", f"the range may span at most {MAX_SPAN.days} days")
    step, chosen = _resolve_step(asked, start, end, notices)
    return PageRange(start, end, step, None, chosen, tuple(notices))


def default_range(now: datetime | None = None) -> PageRange:
    return read_page_range([], now)


# --- the picker in the top bar ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True, slots=True)
class RangePicker:
    """What the top bar's range select, step select and custom range form show."""

    presets: list[Choice]
    steps: list[Choice]
    custom: bool
    from_value: str
    """`from` as a `datetime-local` input's value (UTC, to the minute)."""
    to_value: str
    kept: list[tuple[str, str]]
    """The URL's other parameters (filters), sent again by both forms."""
    workspace: str
    step_value: str


def _local_input(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def range_picker(page_range: PageRange, parameters: Sequence[tuple[str, str]]) -> RangePicker:
    """The picker for `page_range`; `parameters`: the page URL's, to keep the others."""
    current = page_range.last if page_range.last is not None else CUSTOM
    presets = [Choice(value, label, value == current) for value, label, _ in PRESETS]
    if page_range.custom:
        presets.append(Choice(CUSTOM, "Custom range", True))
    automatic = choose_step(page_range.start, page_range.end)
    asked = page_range.step_asked
    steps = [Choice("", f"Auto ({step_label(automatic)})", asked is None)]
    for seconds, label in STEPS:
        if seconds < page_range.seconds and page_range.seconds / seconds <= MAX_POINTS:
            steps.append(Choice(step_text(seconds), label, seconds == asked))
    if asked is not None and not any(choice.selected for choice in steps):
        steps.append(Choice(step_text(asked), step_label(asked), True))
    kept = [
        (name, value)
        for name, value in parameters
        if name not in (*RANGE_PARAMETERS, "workspace", "refresh") and value != ""
    ]
    workspace = next((value for name, value in parameters if name == "workspace"), "")
    return RangePicker(
        presets=presets,
        steps=steps,
        custom=page_range.custom,
        from_value=_local_input(page_range.start),
        to_value=_local_input(page_range.end),
        kept=kept,
        workspace=workspace,
        step_value=step_text(asked) if asked is not None else "",
    )
