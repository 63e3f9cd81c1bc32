"""Silences: matchers as Alertmanager reads them, the checks of a new silence, and the store on
both backends (listed by state newest first, paged, expired early, active ones by workspace)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.silence import (
    Matcher,
    Silence,
    SilenceError,
    alert_labels,
    parse_matcher,
    parse_matchers,
    silencing,
)
from telemetry.alerts.silence_parsing import parse_silence
from telemetry.alerts.silence_store import (
    AlreadyExpired,
    SilenceFilter,
    State,
    active_silences,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.telemetry.alerts.alert_history import OTHER_WORKSPACE, T0, add_workspace, minutes

LABELS = {"model": "gpt-4o", "provider": "openai", "alertname": "Error rate"}


@pytest.mark.parametrize(
    ("written", "matches"),
    [
        ("model=gpt-4o", True),
        ("model = gpt-4o", True),
        ('model="gpt-4o"', True),
        ("model=gpt-4", False),
        ("model!=gpt-4o", False),
        ("model!=gpt-4", True),
        ("model=~gpt-4.*", True),
        ("model=~gpt-4", False),  # anchored: the whole value
        ("model=~gpt|claude", False),
        ("model=~gpt-4o|claude", True),
        ("model!~gpt-4o|claude", False),
        ("model!~claude.*", True),
        ("alertname=Error rate", True),
        ("team=", True),  # a missing label is the empty value
        ("team!=ops", True),
        ("team=~ops", False),
    ],
)
def test_matchers_read_as_alertmanager_does(written: str, matches: bool) -> None:
    assert parse_matcher(written, "matchers[0]").matches(LABELS) is matches


def test_a_matcher_is_text_or_an_object() -> None:
    assert parse_matcher("model=~gpt-4o.*", "m") == Matcher("model", "=~", "gpt-4o.*")
    written = {"label": "model", "op": "!=", "value": "x"}
    assert parse_matcher(written, "m") == Matcher("model", "!=", "x")
    assert parse_matcher(written, "m").text() == "model!=x"


@pytest.mark.parametrize(
    ("given", "field", "problem"),
    [
        ([], "matchers", "at least one"),
        ("model=x", "matchers", "at least one"),
        (["model=x", "nothing here"], "matchers[1]", "label matcher"),
        (["model=~gpt-(4"], "matchers[0]", "not a regular expression"),
        (["9model=x"], "matchers[0]", "not a label name"),
        ([{"label": "model", "op": "~", "value": "x"}], "matchers[0].op", "one of"),
        ([{"label": "model", "value": 4}], "matchers[0].value", "text"),
        ([{"label": "model", "value": "x", "extra": 1}], "matchers[0].extra", "unknown"),
        (["model=~.*", "team!=ops"], "matchers", "without the label"),
        ([f"m{n}=x" for n in range(21)], "matchers", "at most 20"),
    ],
)
def test_bad_matchers_name_the_field(given: object, field: str, problem: str) -> None:
    with pytest.raises(SilenceError) as raised:
        parse_matchers(given)
    assert raised.value.field == field
    assert problem in raised.value.reason


def _parsed(**fields: object) -> Silence:
    data: dict[str, object] = {"matchers": ["model=gpt-4o"], "duration": "2h", "comment": "deploy"}
    return parse_silence(
        data | fields, workspace_id=DEFAULT_WORKSPACE_ID, created_by="ana@example.com", now=T0
    )


def test_a_new_silence_starts_now_and_ends_after_its_duration_or_at_its_end() -> None:
    silence = _parsed()
    assert (silence.starts_at, silence.ends_at) == (T0, T0 + timedelta(hours=2))
    later = _parsed(duration=None, starts_at="2026-03-03T00:00:00Z", ends_at="2026-03-04T06:00Z")
    assert later.starts_at == T0 + timedelta(hours=12)
    assert later.ends_at == T0 + timedelta(hours=42)
    past = _parsed(starts_at="2026-03-01T00:00:00Z")
    assert past.starts_at == T0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"comment": "  "}, "comment"),
        ({"comment": None}, "comment"),
        ({"duration": None}, "ends_at"),
        ({"duration": None, "ends_at": "2026-03-02T11:00:00Z"}, "ends_at"),
        ({"duration": None, "ends_at": "2026-06-30T00:00:00Z"}, "ends_at"),
        ({"duration": None, "ends_at": "tomorrow"}, "ends_at"),
        ({"duration": "91d"}, "duration"),
        ({"duration": "0s"}, "duration"),
        ({"duration": "soon"}, "duration"),
        ({"ends_at": "2026-03-02T14:00:00Z"}, "duration"),
        ({"starts_at": "2028-01-01T00:00:00Z"}, "starts_at"),
        ({"matchers": ["model=~("]}, "matchers[0]"),
    ],
)
def test_a_bad_silence_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(SilenceError) as raised:
        _parsed(**fields)
    assert raised.value.field == field


def test_the_silence_that_holds_an_alert_back_is_the_one_ending_last() -> None:
    short = _parsed(matchers=["model=gpt-4o"], duration="1h")
    long = _parsed(matchers=["alertname=Error rate", "severity=critical"], duration="3h")
    other = _parsed(matchers=["model=claude"], duration="9h")
    labels = alert_labels({"model": "gpt-4o"}, "Error rate", "critical")
    assert silencing([short, long, other], labels) is long
    warning = alert_labels({"model": "gpt-4o"}, "Error rate", "warning")
    assert silencing([short, long, other], warning) is short
    assert silencing([other], labels) is None


async def test_silences_are_stored_listed_by_state_paged_and_expired_early(
    engine: AsyncEngine,
) -> None:
    await add_workspace(engine)
    made = []
    for index, (start, length) in enumerate([(-120, 60), (-30, 60), (-10, 600), (30, 60), (0, 90)]):
        silence = parse_silence(
            {
                "matchers": [f"model=m{index}", "severity!~warn.*"],
                "starts_at": (T0 + minutes(start)).isoformat(),
                "ends_at": (T0 + minutes(start + length)).isoformat(),
                "comment": f"silence number {index}",
            },
            workspace_id=DEFAULT_WORKSPACE_ID,
            created_by="ana@example.com",
            now=T0 + minutes(start),
        )
        made.append(await create_silence(engine, silence))
        await asyncio.sleep(0.002)  # ids order by their millisecond, randomly within one
    elsewhere = parse_silence(
        {"matchers": ["model=m0"], "duration": "1h", "comment": "other workspace"},
        workspace_id=OTHER_WORKSPACE,
        created_by="bo@example.com",
        now=T0,
    )
    await create_silence(engine, elsewhere)
    ours = frozenset({DEFAULT_WORKSPACE_ID})

    async def ids(state: State | None, cursor: str | None = None) -> list[str]:
        found, _ = await list_silences(engine, SilenceFilter(ours, state, cursor), T0)
        return [silence.silence_id for silence in found]

    assert await ids("expired") == [made[0].silence_id]
    assert await ids("active") == [made[4].silence_id, made[2].silence_id, made[1].silence_id]
    assert await ids("pending") == [made[3].silence_id]
    first, more = await list_silences(engine, SilenceFilter(ours, None, limit=2), T0)
    assert more and [s.silence_id for s in first] == [made[4].silence_id, made[3].silence_id]
    rest = await ids(None, cursor=first[-1].silence_id)
    assert rest == [made[2].silence_id, made[1].silence_id, made[0].silence_id]

    stored = await get_silence(engine, made[2].silence_id)
    assert stored == made[2]
    assert stored is not None and stored.matchers[1] == Matcher("severity", "!~", "warn.*")
    assert stored.comment == "silence number 2" and stored.created_by == "ana@example.com"

    active = await active_silences(engine, T0)
    assert sorted(s.silence_id for s in active[DEFAULT_WORKSPACE_ID]) == sorted(
        s.silence_id for s in (made[1], made[2], made[4])
    )
    assert [s.silence_id for s in active[OTHER_WORKSPACE]] == [elsewhere.silence_id]
    assert list(await active_silences(engine, T0, OTHER_WORKSPACE)) == [OTHER_WORKSPACE]

    expired = await expire_silence(engine, made[2].silence_id, T0 + minutes(1))
    assert expired.ends_at == T0 + minutes(1) and expired.starts_at == made[2].starts_at
    pending = await expire_silence(engine, made[3].silence_id, T0 + minutes(1))
    assert pending.starts_at == pending.ends_at == T0 + minutes(1)
    with pytest.raises(AlreadyExpired):
        await expire_silence(engine, made[0].silence_id, T0 + minutes(1))
    with pytest.raises(AlreadyExpired):
        await expire_silence(engine, made[2].silence_id, T0 + minutes(2))
    later = T0 + minutes(1)
    assert [s.silence_id for s in (await active_silences(engine, later))[DEFAULT_WORKSPACE_ID]]
    found, _ = await list_silences(engine, SilenceFilter(ours, "expired"), later)
    assert {s.silence_id for s in found} == {
        made[0].silence_id,
        made[2].silence_id,
        made[3].silence_id,
    }
