"""`steerway demo-data` on SQLite and Postgres: a history that reads like recorded traffic.

One history per backend (2,000 requests over three days, written by the command itself) is
checked against itself: the roll-ups against the raw rows, each trace's summary columns against
its children, every child's workspace against its trace's; and for what makes it realistic: a
daily rhythm, the error types, prices. Then the refusals, the misuse and the determinism.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import migrations
from gateway.demo.cast import WORKSPACE_SLUGS
from gateway.limits.budget_model import settle_micros
from providers.pricing import PriceTable
from server.cli import build_parser
from telemetry.db import as_utc, create_engine
from telemetry.records import TraceBundle, TraceRecord
from telemetry.rollups import BREAKDOWN_KEY_COLUMNS, KEY_COLUMNS, NAME_LIMITS, OTHER
from telemetry.schema import metadata
from telemetry.writers import BatchWriter
from tests.e2e.conftest import (
    STEERWAY,
    Database,
    _create_postgres,
    _drop_postgres,
    backend_database,
)
from tests.telemetry.rollup_oracle import (
    GRAINS,
    assert_rollups_match,
    expected_breakdowns,
    expected_rollups,
    stored_breakdowns,
)

__all__ = ["backend_database"]

SEED = 3
END = "2026-11-29T00:00:00Z"  # a Sunday: the three days are Thursday, Friday and Saturday
REQUESTS = 2000
DAYS = 3
UTC_OFFSETS = {"acme": -5, "globex": 1, "initech": -8, "umbrella": 0, "hooli": 9}
CHILD_TABLES = ("spans", "decisions", "ai_interactions", "guardrail_violations")
ROLLUP_ORDER = ", ".join(KEY_COLUMNS)
BREAKDOWN_ORDER = ", ".join(BREAKDOWN_KEY_COLUMNS)


def steerway(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEERWAY_DATABASE_URL": url}
    env.pop("STEERWAY_CONFIG", None)
    return subprocess.run(
        [STEERWAY, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *args: str
) -> Ran:
    """`steerway ARGS` in this process, as `main` runs it: the exit code and the output."""
    monkeypatch.setenv("STEERWAY_DATABASE_URL", url)
    monkeypatch.delenv("STEERWAY_CONFIG", raising=False)
    capsys.readouterr()
    try:
        parsed = build_parser().parse_args(list(args))
        code = parsed.run(parsed)
    except SystemExit as exit:  # argparse's own errors
        code = int(exit.code or 0)
    out = capsys.readouterr()
    return Ran(code, out.out, out.err)


def demo_data(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return steerway(
        url,
        "demo-data",
        "--days",
        str(DAYS),
        "--requests",
        str(REQUESTS),
        "--seed",
        str(SEED),
        "--end",
        END,
        *extra,
    )


@pytest.fixture(scope="module")
def history(backend_database: Database) -> Database:
    done = demo_data(backend_database.url)
    assert done.returncode == 0, done.stderr
    assert f"Wrote {REQUESTS:,} traces" in done.stdout
    assert "sk-sw-" not in done.stdout + done.stderr  # no key, not even a prefix, is printed
    return backend_database


def money(value: Any, dialect: str) -> Decimal | None:
    if value is None:
        return None
    return Decimal(int(value)).scaleb(-10) if dialect == "sqlite" else Decimal(value)


def dialect_of(database: Database) -> str:
    return "sqlite" if database.url.startswith("sqlite") else "postgresql"


def table(database: Database, name: str, order: str) -> list[dict[str, Any]]:
    """Every row of a table through SQLAlchemy's column types (times, money, JSON decoded)."""

    async def read() -> list[dict[str, Any]]:
        engine = create_engine(database.url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    sa.select(metadata.tables[name]).order_by(sa.text(order))
                )
                return [dict(row._mapping) for row in result]
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def rows(history: Database) -> dict[str, list[dict[str, Any]]]:
    orders = {
        "traces": "trace_id",
        "spans": "trace_id, started_at, span_id",
        "decisions": "trace_id, sequence",
        "ai_interactions": "trace_id, attempt",
        "guardrail_violations": "trace_id, violation_id",
        "usage_rollups": ROLLUP_ORDER,
        "usage_breakdowns": BREAKDOWN_ORDER,
        "workspaces": "slug",
        "api_keys": "key_id",
    }
    return {name: table(history, name, order) for name, order in orders.items()}


def by_trace(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["trace_id"]].append(record)
    return grouped


# --- consistency ------------------------------------------------------------------------------


def test_the_rollups_equal_the_raw_traces_and_their_interactions(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    """Per grain, bucket and every dimension, summed afresh from the raw rows: requests are
    traces, tokens and cost the sums over their interactions, errors the traces whose status is
    error; the latency and time-to-first-token histograms too."""
    traces, interactions = rows["traces"], rows["ai_interactions"]
    assert_rollups_match(
        rows["usage_rollups"], expected_rollups(traces, interactions, rows["decisions"])
    )
    cost = sum(i["cost_usd"] for i in interactions if i["cost_usd"] is not None)
    prompt = sum(i["prompt_tokens"] or 0 for i in interactions)
    errors = sum(1 for t in traces if t["status"] == "error")
    assert errors and cost and prompt
    for grain in GRAINS:
        mine = [r for r in rows["usage_rollups"] if r["grain"] == grain]
        assert sum(r["requests"] for r in mine) == len(traces) == REQUESTS, grain
        assert sum(r["cost_usd"] for r in mine) == cost, grain
        assert sum(r["prompt_tokens"] for r in mine) == prompt, grain
        assert sum(r["errors"] for r in mine) == errors, grain
        assert sum(r["unpriced"] for r in mine) == 0, grain  # every demo model has a price


def test_the_breakdowns_equal_the_raw_tags_end_users_rules_and_findings(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    """Tags and end users are capped per workspace and day; where a day stayed under its cap
    every name is kept and counted exactly, where it did not the total is still exact."""
    expected = expected_breakdowns(
        rows["traces"], rows["ai_interactions"], rows["decisions"], rows["guardrail_violations"]
    )
    stored = stored_breakdowns(rows["usage_breakdowns"])
    kinds = Counter(key[4] for key in stored)
    assert all(kinds[kind] for kind in ("tag", "end_user", "rule", "guardrail", "entity")), kinds

    def day_of(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return (key[0], GRAINS["day"](key[1]), key[2], key[4])  # grain, day, workspace, kind

    names: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for key in expected:
        names[day_of(key)].add(key[5])
    capped = {day for day, kept in names.items() if len(kept) > NAME_LIMITS.get(day[3], 10**9)}
    assert {k: v for k, v in stored.items() if day_of(k) not in capped} == {
        k: v for k, v in expected.items() if day_of(k) not in capped
    }
    for day in capped:
        totals = [
            sum(events for key, (events, *_) in sums.items() if day_of(key) == day)
            for sums in (stored, expected)
        ]
        assert totals[0] == totals[1], day
    assert not any(key[5] == OTHER for key in stored if day_of(key) not in capped)


def test_each_traces_summary_columns_are_its_childrens(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    attempts = by_trace(rows["ai_interactions"])
    decisions = by_trace(rows["decisions"])
    violations = by_trace(rows["guardrail_violations"])
    strength = {"log": 1, "mask": 2, "block": 3}
    for trace in rows["traces"]:
        mine = attempts.get(trace["trace_id"], [])
        if not mine:
            assert trace["deployment"] is None and trace["cost_usd"] is None
            assert trace["total_tokens"] is None and trace["ttft_ms"] is None
        else:
            assert trace["deployment"] == mine[-1]["deployment"]
            for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"):
                known = [a[name] for a in mine if a[name] is not None]
                assert trace[name] == (sum(known) if known else None), name
            answered = [a for a in mine if a["status"] == "ok"]
            assert trace["ttft_ms"] == (answered[-1]["ttft_ms"] if answered else None)
        assert trace["cache_hit"] == any(a["cache_hit"] for a in mine)
        assert trace["rules_matched"] == [
            d["rule_id"]
            for d in decisions[trace["trace_id"]]
            if d["type"] == "rule_evaluation" and d["rule_id"] is not None
        ]
        found = violations.get(trace["trace_id"], [])
        assert trace["guardrails_triggered"] == list(dict.fromkeys(v["guardrail"] for v in found))
        assert trace["guardrail_action"] == max(
            (v["action"] for v in found), key=strength.__getitem__, default=None
        )


def test_every_child_row_belongs_to_its_traces_workspace(history: Database) -> None:
    for name in CHILD_TABLES:
        orphans = history.rows(
            f"SELECT count(*) AS n FROM {name} c LEFT JOIN traces t ON t.trace_id = c.trace_id "
            "WHERE t.trace_id IS NULL OR t.workspace_id <> c.workspace_id"
        )
        assert orphans[0]["n"] == 0, name
    keys = history.rows(
        "SELECT count(*) AS n FROM traces t JOIN api_keys k ON k.key_id = t.api_key_id "
        "WHERE k.workspace_id <> t.workspace_id"
    )
    assert keys[0]["n"] == 0
    assert history.rows("SELECT count(*) AS n FROM traces WHERE api_key_id IS NULL")[0]["n"] == 0


def test_spans_and_decisions_are_shaped_like_the_proxys(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    spans = by_trace(rows["spans"])
    decisions = by_trace(rows["decisions"])
    attempts = by_trace(rows["ai_interactions"])
    for trace in rows["traces"]:
        mine = spans[trace["trace_id"]]
        roots = [s for s in mine if s["name"] == "gateway.request"]
        assert len(roots) == 1
        root = roots[0]
        assert (root["started_at"], root["ended_at"]) == (trace["started_at"], trace["ended_at"])
        assert root["parent_span_id"] == trace["parent_span_id"]
        assert root["attributes"]["http.status_code"] == trace["http_status"]
        for span in mine:
            if span is not root:
                assert span["parent_span_id"] == root["span_id"]
                assert root["started_at"] <= span["started_at"] <= span["ended_at"]
                assert span["ended_at"] <= root["ended_at"]
        provider_spans = {s["span_id"]: s for s in mine if s["name"].startswith("provider.")}
        for attempt in attempts.get(trace["trace_id"], []):
            if attempt["cache_hit"]:
                assert attempt["span_id"] is None and attempt["deployment"] == "cache"
                continue
            span = provider_spans.pop(attempt["span_id"])
            assert span["status"] == attempt["status"]
            assert span["attributes"]["gen_ai.provider.name"] == attempt["provider"]
        assert not provider_spans
        sequence = [d["sequence"] for d in decisions[trace["trace_id"]]]
        assert sequence == list(range(1, len(sequence) + 1))
        assert decisions[trace["trace_id"]][0]["type"] == "rule_evaluation"


def test_every_violation_is_a_guardrail_decision_that_found_something(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    decisions = by_trace(rows["decisions"])
    assert rows["guardrail_violations"]
    for violation in rows["guardrail_violations"]:
        findings = [
            d
            for d in decisions[violation["trace_id"]]
            if d["type"] == "guardrail"
            and d["input"]["guardrail"] == violation["guardrail"]
            and d["input"]["direction"] == violation["direction"]
            and d["output"]["outcome"] != "pass"
        ]
        assert len(findings) == 1
        assert findings[0]["output"]["entities"] == violation["entities"]


def test_costs_are_the_price_tables_exactly(rows: dict[str, list[dict[str, Any]]]) -> None:
    prices = PriceTable.shipped()
    priced = 0
    for i in rows["ai_interactions"]:
        if i["cache_hit"]:
            assert i["cost_usd"] == 0
            assert i["cost_saved_usd"] == prices.cost(
                i["provider_model"], i["prompt_tokens"], i["completion_tokens"] or 0,
                i["cached_tokens"],
            )  # fmt: skip
        elif i["prompt_tokens"] is None:
            assert i["cost_usd"] is None
        else:
            completion = i["completion_tokens"] if i["operation"] == "chat" else 0
            assert i["cost_usd"] == prices.cost(
                i["provider_model"], i["prompt_tokens"], completion, i["cached_tokens"]
            )
            assert isinstance(i["cost_usd"], Decimal)
            priced += 1
    assert priced > REQUESTS * 0.9


def test_budget_spend_is_what_the_admitted_requests_cost(
    history: Database, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """`budget_spend` holds, per budget window, what the requests the budget admitted cost (the
    gateway settles each request's cost, rounded to the micro-dollar)."""
    decisions = by_trace(rows["decisions"])
    attempts = by_trace(rows["ai_interactions"])
    spent: Counter[tuple[str, str, str, datetime]] = Counter()
    for trace in rows["traces"]:
        mine = decisions[trace["trace_id"]]
        checks = [d for d in mine if d["type"] == "budget_check" and "allowed" in d["output"]]
        limited = any(d["type"] == "rate_limit" and not d["output"]["allowed"] for d in mine)
        if not checks or not checks[0]["output"]["allowed"] or limited:
            continue  # refused before it could cost anything
        cost = sum(
            (a["cost_usd"] for a in attempts.get(trace["trace_id"], []) if not a["cache_hit"]
             and a["cost_usd"] is not None),
            Decimal(0),
        )  # fmt: skip
        ended = as_utc(trace["ended_at"])
        assert ended is not None
        day = ended.replace(hour=0, minute=0, second=0, microsecond=0)
        for label in checks[0]["input"]["budgets"]:
            scope, subject, window = label.split(":")
            start = day if window == "daily" else day.replace(day=1)
            spent[(scope, subject, window, start)] += settle_micros(cost)
    stored = {
        (r["scope"], r["subject"], r["window"], as_utc(r["window_start"])): r["spent_micros"]
        for r in table(history, "budget_spend", "scope, subject, window_start")
    }
    assert stored == {key: micros for key, micros in spent.items() if micros}
    assert {scope for scope, *_ in stored} == {"key", "workspace"}
    soft = [d for d in rows["decisions"] if d["type"] == "budget_check" and "scope" in d["input"]]
    assert soft, "a budget passed its soft limit"


# --- realism ----------------------------------------------------------------------------------


def test_trace_ids_sort_as_their_start_times(rows: dict[str, list[dict[str, Any]]]) -> None:
    by_id = [t["trace_id"] for t in rows["traces"]]
    by_time = [t["trace_id"] for t in sorted(rows["traces"], key=lambda t: t["started_at"])]
    assert by_id == by_time
    starts = [start for t in rows["traces"] if (start := as_utc(t["started_at"])) is not None]
    assert len(starts) == len(rows["traces"])
    end = datetime.fromisoformat(END)
    assert min(starts) >= end - timedelta(days=DAYS) and max(starts) < end


def test_weekday_daytime_is_busier_than_night(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Traces per hour in each workspace's own clock: weekday office hours against nights."""
    slugs = {w["workspace_id"]: w["slug"] for w in rows["workspaces"]}
    daytime = night = 0
    for trace in rows["traces"]:
        started = as_utc(trace["started_at"])
        assert started is not None
        local = started + timedelta(hours=UTC_OFFSETS[slugs[trace["workspace_id"]]])
        if local.weekday() < 5 and 9 <= local.hour < 17:
            daytime += 1
        elif 0 <= local.hour < 6:
            night += 1
    # Thursday and Friday hold 2 x 8 office hours in every workspace's clock; the three days
    # 3 x 6 night hours.
    assert daytime / 16 > 3 * (night / 18)


def test_the_errors_the_gateway_records_are_all_there(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    outcomes = Counter((t["status"], t["http_status"], t["error_type"]) for t in rows["traces"])
    for outcome in [
        ("ok", 200, None),
        ("error", 502, "upstream_error"),  # the provider's 5xx, retries exhausted
        ("error", 504, "upstream_timeout"),
        ("error", 429, "rate_limit_error"),  # a provider's 429
        ("denied", 429, "rate_limit_exceeded"),  # a key's rpm limit
        ("denied", 429, "insufficient_quota"),  # a budget
        ("denied", 400, "guardrail_violation"),
        ("denied", 400, "model_retired"),  # a rule's deny
        ("cancelled", 499, "client_disconnected"),
    ]:
        assert outcomes[outcome] > 0, outcome
    assert {status for status, _, _ in outcomes} == {"ok", "error", "denied", "cancelled"}
    assert outcomes[("ok", 200, None)] > REQUESTS * 0.9
    attempts = Counter(i["error_type"] for i in rows["ai_interactions"])
    assert attempts["timeout"] and attempts["http_429"]
    assert any(e and e.startswith("http_5") for e in attempts)
    assert all(d["outcome"] is not None for d in rows["decisions"])  # every type is one it knows
    types = Counter(d["type"] for d in rows["decisions"])
    for kind in ("rule_evaluation", "model_selection", "budget_check", "rate_limit",
                 "cache_decision", "guardrail", "retry", "fallback"):  # fmt: skip
        assert types[kind] > 0, kind


def test_streams_cache_hits_retries_and_rules_show_up(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    traces = rows["traces"]
    streamed = [t for t in traces if t["stream"] and t["status"] == "ok"]
    assert len(streamed) > REQUESTS * 0.2
    assert all(
        t["ttft_ms"] is not None and t["ttft_ms"] > 0 for t in streamed if not t["cache_hit"]
    )
    assert all(t["ttft_ms"] is None for t in traces if not t["stream"])
    hits = [i for i in rows["ai_interactions"] if i["cache_hit"]]
    assert len(hits) > REQUESTS * 0.02
    assert all(i["cost_saved_usd"] > 0 for i in hits)
    per_trace = Counter(i["trace_id"] for i in rows["ai_interactions"])
    assert max(per_trace.values()) >= 3
    assert {r for t in traces for r in t["rules_matched"]} >= {
        "support-guardrails", "free-tier-cap", "batch-to-mini", "retire-gpt-35",
    }  # fmt: skip
    assert {t["guardrail_action"] for t in traces} == {None, "log", "mask", "block"}
    assert len({t["end_user"] for t in traces}) > 100
    assert len({(t["requested_model"], t["provider"]) for t in traces if t["provider"]}) >= 8


def test_workspaces_and_keys_are_demo_rows_without_usable_keys(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    demo = [w for w in rows["workspaces"] if w["settings"].get("demo_data") is True]
    assert [w["slug"] for w in demo] == sorted(WORKSPACE_SLUGS)
    assert {w["slug"] for w in rows["workspaces"]} - set(WORKSPACE_SLUGS) == {"default"}
    keys = rows["api_keys"]
    assert len(keys) >= 10
    assert all(k["metadata"] == {"demo_data": True} and k["role"] == "user" for k in keys)
    assert len({k["key_hash"] for k in keys}) == len(keys)
    assert all(len(k["key_hash"]) == 64 and k["display_prefix"].endswith("...") for k in keys)
    used = {t["api_key_id"] for t in rows["traces"]}
    assert used == {k["key_id"] for k in keys}
    assert all(t["features"]["demo_data"] is True for t in rows["traces"])


# --- determinism --------------------------------------------------------------------------------


def test_the_same_seed_writes_the_same_history(
    backend_database: Database,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two databases, the same seed: the same rows in every table (but the keys' random
    hashes); another seed, or another span of time, adds a history of its own next to it."""
    args = ("demo-data", "--days", "2", "--requests", "300", "--seed", "11", "--end", END)
    copies = [fresh_like(backend_database, tmp_path / f"copy{n}.db") for n in range(2)]
    try:
        for copy in copies:
            done = cli(monkeypatch, capsys, copy.url, *args)
            assert done.returncode == 0, done.stderr
        for name, order in _ORDERS.items():
            first, second = (table(copy, name, order) for copy in copies)
            if name == "api_keys":  # the hashes are random: no one can derive a working key
                assert {k["key_hash"] for k in first}.isdisjoint(k["key_hash"] for k in second)
                first = [{**k, "key_hash": None} for k in first]
                second = [{**k, "key_hash": None} for k in second]
            if name == "workspaces":  # the default workspace is the migration's
                first = [w for w in first if w["slug"] != "default"]
                second = [w for w in second if w["slug"] != "default"]
            assert first and first == second, name
        other = cli(monkeypatch, capsys, copies[0].url, *args[:-4], "--seed", "12", "--end", END)
        assert other.returncode == 0, other.stderr
        earlier = cli(monkeypatch, capsys, copies[0].url, *args[:-2], "--end", "2026-11-20")
        assert earlier.returncode == 0, earlier.stderr  # the same seed, another span: other ids
        traces = table(copies[0], "traces", "trace_id")
        assert len(traces) == 900
        assert len({t["request_id"] for t in traces}) == 900
    finally:
        for copy in copies:
            if copy.url.startswith("postgresql"):
                _drop_postgres(copy.url)


def fresh_like(database: Database, sqlite_path: Any) -> Database:
    """A new, migrated database on the same backend as `database`."""
    url = f"sqlite:///{sqlite_path}" if dialect_of(database) == "sqlite" else _create_postgres()
    migrations.upgrade(url)
    return Database(url)


_ORDERS = {
    "traces": "trace_id",
    "spans": "trace_id, started_at, span_id",
    "decisions": "trace_id, sequence",
    "ai_interactions": "trace_id, attempt",
    "guardrail_violations": "trace_id, violation_id",
    "usage_rollups": ROLLUP_ORDER,
    "usage_breakdowns": BREAKDOWN_ORDER,
    "workspaces": "slug",
    "api_keys": "key_id",
}


# --- refusals and misuse -------------------------------------------------------------------------


SMALL = ("--days", "1", "--requests", "200", "--end", END)


@pytest.fixture
def real_traffic(backend_database: Database, tmp_path: Any) -> Iterator[Database]:
    """A fresh database of the module's backend holding one request recorded by the gateway."""
    database = fresh_like(backend_database, tmp_path / "real.db")
    try:
        started = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
        record = TraceRecord(
            trace_id="0" * 31 + "1",
            workspace_id="0" * 32,
            request_id="real",
            route="/v1/chat/completions",
            started_at=started,
            ended_at=started + 0.5,
            requested_model="gpt-4o-mini",
            features={"model": "gpt-4o-mini", "stream": False},
        )

        async def write() -> None:
            engine = create_engine(database.url)
            try:
                await BatchWriter(engine).write([TraceBundle(trace=record)])
            finally:
                await engine.dispose()

        asyncio.run(write())
        yield database
    finally:
        if database.url.startswith("postgresql"):
            _drop_postgres(database.url)


def test_a_database_with_real_traffic_is_refused_unless_forced(
    real_traffic: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def count() -> int:
        return int(real_traffic.rows("SELECT count(*) AS n FROM traces")[0]["n"])

    refused = cli(monkeypatch, capsys, real_traffic.url, "demo-data", *SMALL)
    assert refused.returncode == 2
    assert "refusing" in refused.stderr and "--force" in refused.stderr
    assert "did not write" in refused.stderr and "Traceback" not in refused.stderr
    assert count() == 1
    assert real_traffic.rows("SELECT count(*) AS n FROM workspaces WHERE slug = 'acme'") == [
        {"n": 0}
    ]
    forced = cli(monkeypatch, capsys, real_traffic.url, "demo-data", *SMALL, "--force")
    assert forced.returncode == 0, forced.stderr
    assert count() == 201
    again = cli(monkeypatch, capsys, real_traffic.url, "demo-data", *SMALL, "--force")
    assert again.returncode == 1  # the very same history: its ids are taken
    assert "--seed" in again.stderr and "Traceback" not in again.stderr
    assert count() == 201


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between 1 and 366"),
        (["--days", "400"], "--days must be between 1 and 366"),
        (["--requests", "0"], "--requests must be between 1"),
        (["--end", "yesterday"], "--end"),
        (["--days", "two"], "invalid int value"),
    ],
)
def test_misuse_exits_2_with_a_clear_message(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    done = cli(monkeypatch, capsys, f"sqlite:///{tmp_path / 'x.db'}", "demo-data", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_an_unmigrated_database_is_named_and_not_touched(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = cli(monkeypatch, capsys, f"sqlite:///{tmp_path / 'empty.db'}", "demo-data", *SMALL)
    assert done.returncode == 1
    assert "steerway migrate" in done.stderr and "Traceback" not in done.stderr


def test_demo_workspaces_take_another_slug_when_theirs_is_taken(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'taken.db'}"
    migrations.upgrade(url)
    made = cli(monkeypatch, capsys, url, "workspaces", "create", "acme", "--name", "Our Acme")
    assert made.returncode == 0, made.stderr
    done = cli(monkeypatch, capsys, url, "demo-data", *SMALL)
    assert done.returncode == 0, done.stderr
    database = Database(url)
    slugs = {r["slug"] for r in database.rows("SELECT slug FROM workspaces")}
    assert {"acme", "acme-demo", "globex"} <= slugs
    ours = database.rows(
        "SELECT count(*) AS n FROM traces t JOIN workspaces w ON w.workspace_id = t.workspace_id "
        "WHERE w.slug = 'acme'"
    )
    assert ours == [{"n": 0}]
    more = cli(monkeypatch, capsys, url, "demo-data", *SMALL, "--seed", "9")
    assert more.returncode == 0, more.stderr
    assert {r["slug"] for r in database.rows("SELECT slug FROM workspaces")} == slugs
    keys = database.rows("SELECT count(*) AS n FROM api_keys")
    assert keys == [{"n": 12}]  # the second history reuses the first one's keys
    assert database.rows("SELECT count(*) AS n FROM traces") == [{"n": 400}]
