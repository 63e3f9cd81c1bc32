"""Malformed and hostile input on every admin API route, through a running gateway on each
backend: bodies that are not UTF-8 or nest ten thousand deep, fields of the wrong type, numbers
out of every range, times outside what can be stored, rules nested hundreds deep, odd path and
query parameters. Each is a 4xx in OpenAI's shape (a 400 names the parameter); none is a 5xx or
a traceback in the log, and the gateway goes on serving.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.admin_ui.conftest import error_of
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.logwatch import LogWatch, assert_no_traceback, watched_gateway

API = "/admin/api"
HELLO = [{"role": "user", "content": "hello"}]
FAR_TIMES = [
    "9999-12-31T23:59:59-12:00",  # in the year 10000 once in UTC
    "9999-12-31T23:59:59Z",  # a day past what any zone can show
    "0001-01-01T00:00:00+01:00",  # in the year 0 once in UTC
    "1969-12-31T23:59:59Z",  # before the epoch
    "10000-01-01T00:00:00Z",  # not a date Python reads
    "2030-01-01T00:00:00+25:00",  # no such offset
    "",
    "\U0001f600",
]


def deep_object(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_not(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"model": "mock-gpt"}
    for _ in range(depth):
        condition = {"not": condition}
    return condition


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("invalid-utf8", b'{"name": "\xff\xfe"}', "invalid_json"),
    ("invalid-utf8-key", b'{"\xc3": 1}', "invalid_json"),
    ("utf8-encoded-surrogate", b'{"name": "\xed\xa0\x80"}', "invalid_json"),
    ("lone-surrogate-escape", b'{"name": "\\ud800"}', "invalid_json"),
    ("ten-thousand-deep", b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "invalid_json"),
    ("ten-thousand-deep-objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "invalid_json"),
    ("number-out-of-range", b'{"name": 1e400}', "invalid_json"),
    ("integer-out-of-range", b'{"name": ' + b"9" * 5000 + b"}", "invalid_json"),
    ("nan-literal", b'{"name": NaN}', "invalid_json"),
    ("not-json", b"{nope", "invalid_json"),
    ("not-an-object", b"[1, 2]", "invalid_body"),
]


def body_routes(key_id: str, slug: str, rule_id: str) -> list[tuple[str, str]]:
    return [
        ("POST", f"{API}/keys"),
        ("PATCH", f"{API}/keys/{key_id}"),
        ("POST", f"{API}/workspaces"),
        ("PATCH", f"{API}/workspaces/{slug}"),
        ("POST", f"{API}/rules"),
        ("PUT", f"{API}/rules/{rule_id}"),
        ("POST", f"{API}/rules/{rule_id}/rollback"),
        ("POST", f"{API}/rules/simulate"),
        ("POST", f"{API}/rules/replay"),
    ]


@pytest.fixture(scope="module")
def watched(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, LogWatch]]:
    config = mock_config(
        mock_provider,
        guardrails={"definitions": {"words": {"kind": "deny_list", "words": ["x"]}}},
    )
    with watched_gateway(
        backend_database,
        config,
        tmp_path_factory.mktemp("admin-malformed"),
        master_key="sk-master-" + secrets.token_hex(8),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def objects(watched: tuple[GatewayProcess, LogWatch]) -> tuple[str, str, str]:
    """A key, a workspace and a database rule to aim updates at."""
    gateway, _ = watched
    slug = f"ws-{secrets.token_hex(4)}"
    rule_id = f"r-{secrets.token_hex(4)}"
    with gateway.http() as http:
        key = http.post(f"{API}/keys", json={"name": "target"})
        assert key.status_code == 201, key.text
        workspace = http.post(f"{API}/workspaces", json={"slug": slug})
        assert workspace.status_code == 201, workspace.text
        rule = http.post(f"{API}/rules", json={"id": rule_id, "then": {"tag": ["t"]}})
        assert rule.status_code == 201, rule.text
    return key.json()["id"], slug, rule_id


def test_every_admin_body_route_refuses_an_undecodable_body_with_a_400(
    watched: tuple[GatewayProcess, LogWatch], objects: tuple[str, str, str]
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    failures = []
    with gateway.http() as http:
        for method, path in body_routes(*objects):
            for case, body, code in BAD_BODIES:
                response = http.request(
                    method, path, content=body, headers={"content-type": "application/json"}
                )
                if response.status_code != 400:
                    failures.append(
                        f"{method} {path} {case}: {response.status_code} {response.text[:200]}"
                    )
                    continue
                error = error_of(response, 400)
                if (error["param"], error["code"]) != ("body", code):
                    failures.append(f"{method} {path} {case}: {error}")
    assert not failures, "\n".join(failures)
    assert_no_traceback(watch.since(mark))


# (case, method, path, json body, expected status, expected param)
FieldCase = tuple[str, str, str, Any, int, str | None]


def field_cases(key_id: str, slug: str, rule_id: str) -> list[FieldCase]:
    keys = f"{API}/keys"
    key = f"{keys}/{key_id}"
    workspaces = f"{API}/workspaces"
    workspace = f"{workspaces}/{slug}"
    rules = f"{API}/rules"
    cases: list[FieldCase] = []
    for index, when in enumerate(FAR_TIMES):
        cases += [
            (
                f"key-expires-{index}",
                "POST",
                keys,
                {"name": "k", "expires_at": when},
                400,
                "expires_at",
            ),
            (f"key-update-expires-{index}", "PATCH", key, {"expires_at": when}, 400, "expires_at"),
            (
                f"simulate-time-{index}",
                "POST",
                f"{rules}/simulate",
                {"request": {"model": "mock-gpt", "messages": HELLO}, "time": when},
                400,
                "time",
            ),
            (f"replay-since-{index}", "POST", f"{rules}/replay", {"since": when}, 400, "since"),
            (f"replay-until-{index}", "POST", f"{rules}/replay", {"until": when}, 400, "until"),
        ]
    for value in (1e308, -1, 253_402_300_800, 10**30, True, [2030]):
        cases += [
            (
                f"simulate-time-{value!r}",
                "POST",
                f"{rules}/simulate",
                {"request": {"model": "mock-gpt", "messages": HELLO}, "time": value},
                400,
                "time",
            ),
            (f"replay-until-{value!r}", "POST", f"{rules}/replay", {"until": value}, 400, "until"),
            (
                f"key-expires-{value!r}",
                "POST",
                keys,
                {"name": "k", "expires_at": value},
                400,
                "expires_at",
            ),
        ]
    wrong_counts: list[Any] = [-1, 0, 1.5, True, "5", 10**30, 1e308, [], {"a": 1}]
    for field in ("rpm_limit", "tpm_limit", "max_parallel"):
        for value in wrong_counts:
            cases += [
                (f"key-{field}-{value!r}", "POST", keys, {"name": "k", field: value}, 400, field),
                (f"key-update-{field}-{value!r}", "PATCH", key, {field: value}, 400, field),
                (
                    f"workspace-{field}-{value!r}",
                    "PATCH",
                    workspace,
                    {"settings": {field: value}},
                    400,
                    f"settings.{field}",
                ),
            ]
    for amount in (
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "-5",
        "9" * 5000,
        1e308,
        "0x10",
        "",
        True,
    ):
        budgets = [{"limit_usd": amount, "window": "monthly"}]
        cases += [
            (
                f"key-budget-{str(amount)[:10]}",
                "POST",
                keys,
                {"name": "k", "budgets": budgets},
                400,
                "budgets[0].limit_usd",
            ),
            (
                f"workspace-budget-{str(amount)[:10]}",
                "PATCH",
                workspace,
                {"settings": {"budgets": budgets}},
                400,
                "settings.budgets[0].limit_usd",
            ),
        ]
    for soft in (1e308, -1, "80", True, 101):
        budgets = [{"limit_usd": "5", "window": "monthly", "soft_percent": soft}]
        cases.append(
            (
                f"key-budget-soft-{soft!r}",
                "POST",
                keys,
                {"name": "k", "budgets": budgets},
                400,
                "budgets[0].soft_percent",
            )
        )
    cases += [
        ("key-name-number", "POST", keys, {"name": 5}, 400, "name"),
        ("key-name-empty", "POST", keys, {"name": ""}, 400, "name"),
        ("key-name-huge", "POST", keys, {"name": "n" * 100_000}, 400, "name"),
        ("key-role", "POST", keys, {"name": "k", "role": "god"}, 400, "role"),
        (
            "key-models-string",
            "POST",
            keys,
            {"name": "k", "allowed_models": "*"},
            400,
            "allowed_models",
        ),
        (
            "key-models-item",
            "POST",
            keys,
            {"name": "k", "allowed_models": [5]},
            400,
            "allowed_models[0]",
        ),
        (
            "key-models-deep",
            "POST",
            keys,
            {"name": "k", "allowed_models": [deep_object(500)]},
            400,
            "allowed_models[0]",
        ),
        (
            "key-tags-item",
            "POST",
            keys,
            {"name": "k", "default_tags": [{"a": 1}]},
            400,
            "default_tags[0]",
        ),
        (
            "key-tags-huge",
            "POST",
            keys,
            {"name": "k", "default_tags": ["t" * 100_000]},
            400,
            "default_tags[0]",
        ),
        (
            "key-guardrails-unknown",
            "POST",
            keys,
            {"name": "k", "guardrails": ["nope"]},
            400,
            "guardrails[0]",
        ),
        ("key-guardrails-type", "POST", keys, {"name": "k", "guardrails": 5}, 400, "guardrails"),
        ("key-metadata-list", "POST", keys, {"name": "k", "metadata": []}, 400, "metadata"),
        (
            "key-metadata-huge",
            "POST",
            keys,
            {"name": "k", "metadata": {"a": "b" * 100_000}},
            400,
            "metadata",
        ),
        (
            "key-metadata-deep",
            "POST",
            keys,
            {"name": "k", "metadata": deep_object(500)},
            201,  # nesting is no problem for a stored value once the body decodes
            None,
        ),
        ("key-workspace-number", "POST", keys, {"name": "k", "workspace": 5}, 400, "workspace"),
        ("key-unknown-field", "POST", keys, {"name": "k", "x" * 10_000: 1}, 400, "x" * 100),
        ("key-move", "PATCH", key, {"workspace_id": 5}, 400, "workspace"),
        ("workspace-slug-number", "POST", workspaces, {"slug": 5}, 400, "slug"),
        ("workspace-slug-huge", "POST", workspaces, {"slug": "s" * 100_000}, 400, "slug"),
        ("workspace-slug-odd", "POST", workspaces, {"slug": "\u202egnp.exe"}, 400, "slug"),
        (
            "workspace-name-huge",
            "POST",
            workspaces,
            {"slug": "ok-slug-x", "name": "n" * 100_000},
            400,
            "name",
        ),
        ("workspace-settings-list", "PATCH", workspace, {"settings": []}, 400, "settings"),
        (
            "workspace-settings-unknown",
            "PATCH",
            workspace,
            {"settings": {"x": 1}},
            400,
            "settings.x",
        ),
        (
            "workspace-settings-deep",
            "PATCH",
            workspace,
            {"settings": deep_object(500)},
            400,
            "settings.a",
        ),
        (
            "workspace-guardrails",
            "PATCH",
            workspace,
            {"settings": {"guardrails": [None]}},
            400,
            "settings.guardrails[0]",
        ),
        (
            "rule-500-nots",
            "POST",
            rules,
            {"id": "deep", "when": deep_not(500), "then": {"tag": ["x"]}},
            400,
            "rules[0].when" + ".not" * 32,
        ),
        (
            "rule-update-500-nots",
            "PUT",
            f"{rules}/{rule_id}",
            {"when": deep_not(500), "then": {"tag": ["x"]}},
            400,
            "rules[0].when" + ".not" * 32,
        ),
        ("rule-id-number", "POST", rules, {"id": 5, "then": {"tag": ["x"]}}, 400, "rules[0].id"),
        (
            "rule-id-huge",
            "POST",
            rules,
            {"id": "r" * 100_000, "then": {"tag": ["x"]}},
            400,
            "rules[0].id",
        ),
        (
            "rule-priority-huge",
            "POST",
            rules,
            {"id": "p1", "priority": 10**30, "then": {"tag": ["x"]}},
            400,
            "rules[0].priority",
        ),
        (
            "rule-priority-float",
            "POST",
            rules,
            {"id": "p2", "priority": 1e308, "then": {"tag": ["x"]}},
            400,
            "rules[0].priority",
        ),
        (
            "rule-set-negative-max-tokens",
            "POST",
            rules,
            {"id": "s1", "then": {"set": {"max_tokens": -5000}}},
            400,
            "rules[0].then.set.max_tokens",
        ),
        (
            "rule-cap-huge-n",
            "POST",
            rules,
            {"id": "s2", "then": {"cap": {"n": 10**30}}},
            400,
            "rules[0].then.cap.n",
        ),
        (
            "rule-cap-float",
            "POST",
            rules,
            {"id": "s3", "then": {"cap": {"temperature": -1.0}}},
            400,
            "rules[0].then.cap.temperature",
        ),
        (
            "rule-zone-path",
            "POST",
            rules,
            {"id": "z1", "timezone": "../../../etc/passwd", "then": {"tag": ["x"]}},
            400,
            "rules[0].timezone",
        ),
        (
            "rule-zone-huge",
            "POST",
            rules,
            {"id": "z2", "timezone": "Z" * 100_000, "then": {"tag": ["x"]}},
            400,
            "rules[0].timezone",
        ),
        (
            "rule-hour-huge",
            "POST",
            rules,
            {"id": "h1", "when": {"time.hour": 1e308}, "then": {"tag": ["x"]}},
            400,
            "rules[0].when.time.hour",
        ),
        (
            "rule-in-deep",
            "POST",
            rules,
            {"id": "i1", "when": {"model": {"in": [deep_object(400)]}}, "then": {"tag": ["x"]}},
            400,
            "rules[0].when.model.in",
        ),
        (
            "rule-deny-status",
            "POST",
            rules,
            {"id": "d1", "then": {"deny": {"status": 10**30}}},
            400,
            "rules[0].then.deny.status",
        ),
        (
            "rule-version-huge",
            "PUT",
            f"{rules}/{rule_id}",
            {"version": 10**30, "then": {"tag": ["x"]}},
            400,
            "version",
        ),
        (
            "rule-version-negative",
            "PUT",
            f"{rules}/{rule_id}",
            {"version": -1, "then": {"tag": ["x"]}},
            400,
            "version",
        ),
        (
            "rollback-version-huge",
            "POST",
            f"{rules}/{rule_id}/rollback",
            {"version": 10**30},
            400,
            "version",
        ),
        (
            "rollback-int64",
            "POST",
            f"{rules}/{rule_id}/rollback",
            {"version": 2**63},
            400,
            "version",
        ),
        (
            "rollback-version-type",
            "POST",
            f"{rules}/{rule_id}/rollback",
            {"version": "1"},
            400,
            "version",
        ),
        (
            "simulate-request-negative-max-tokens",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO, "max_tokens": -1}},
            400,
            "request.max_tokens",
        ),
        (
            "simulate-request-huge-n",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO, "n": 10**30}},
            400,
            "request.n",
        ),
        (
            "simulate-candidate-500-nots",
            "POST",
            f"{rules}/simulate",
            {
                "request": {"model": "mock-gpt", "messages": HELLO},
                "rules": [{"when": deep_not(500), "then": {"tag": ["x"]}}],
            },
            400,
            "rules[0].when" + ".not" * 32,
        ),
        (
            "simulate-budget-huge",
            "POST",
            f"{rules}/simulate",
            {
                "request": {"model": "mock-gpt", "messages": HELLO},
                "budget": {"key_percent": 10**30},
            },
            200,
            None,
        ),
        (
            "simulate-headers-type",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO}, "headers": {"x": 5}},
            400,
            "headers",
        ),
        (
            "simulate-tags-many",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO}, "tags": ["t" * 1000] * 1000},
            200,
            None,
        ),
        (
            "simulate-body-over-10-mb",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO}, "tags": ["t" * 1000] * 11_000},
            413,
            None,
        ),
        (
            "simulate-metadata-deep",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO}, "metadata": deep_object(500)},
            200,
            None,
        ),
        (
            "simulate-operation",
            "POST",
            f"{rules}/simulate",
            {"request": {"model": "mock-gpt", "messages": HELLO}, "operation": 5},
            400,
            "operation",
        ),
        ("replay-last-huge", "POST", f"{rules}/replay", {"last": 10**30}, 400, "last"),
        ("replay-last-negative", "POST", f"{rules}/replay", {"last": -1}, 400, "last"),
        ("replay-workspace-type", "POST", f"{rules}/replay", {"workspace": 5}, 400, "workspace"),
        (
            "replay-candidate-500-nots",
            "POST",
            f"{rules}/replay",
            {"rules": [{"when": deep_not(500), "then": {"tag": ["x"]}}]},
            400,
            "rules[0].when" + ".not" * 32,
        ),
    ]
    return cases


def test_every_admin_field_refuses_what_it_cannot_take_with_a_400_naming_it(
    watched: tuple[GatewayProcess, LogWatch], objects: tuple[str, str, str]
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    failures = []
    with gateway.http() as http:
        for case, method, path, body, status, param in field_cases(*objects):
            response = http.request(method, path, json=body)
            if response.status_code != status:
                failures.append(
                    f"{case}: expected {status}, got {response.status_code} {response.text[:300]}"
                )
                continue
            if status >= 400:
                error = error_of(response, status)
                if status == 400 and error["param"] != param:
                    failures.append(
                        f"{case}: param {error['param']!r}, expected {param!r} "
                        f"({error['message'][:300]})"
                    )
                if len(error["message"]) > 2_000:
                    failures.append(f"{case}: a message of {len(error['message'])} characters")
    assert not failures, "\n".join(failures)
    assert_no_traceback(watch.since(mark))


ODD_SEGMENTS = [
    "x" * 10_000,
    "%FF",
    "%ED%A0%80",
    "%C0%AF",
    "%F0%9F%98%80",
    "%E2%80%AE",
    "..%2F..%2Fetc",
    "%25",
]


def test_odd_path_and_query_parameters_are_4xx_never_5xx(
    watched: tuple[GatewayProcess, LogWatch], objects: tuple[str, str, str]
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    failures = []
    requests: list[tuple[str, str]] = []
    for segment in ODD_SEGMENTS:
        requests += [
            ("GET", f"{API}/keys/{segment}"),
            ("PATCH", f"{API}/keys/{segment}"),
            ("POST", f"{API}/keys/{segment}/revoke"),
            ("DELETE", f"{API}/keys/{segment}"),
            ("GET", f"{API}/workspaces/{segment}"),
            ("PATCH", f"{API}/workspaces/{segment}"),
            ("GET", f"{API}/traces/{segment}"),
            ("GET", f"{API}/rules/{segment}"),
            ("PUT", f"{API}/rules/{segment}"),
            ("DELETE", f"{API}/rules/{segment}"),
            ("GET", f"{API}/rules/{segment}/history"),
            ("POST", f"{API}/rules/{segment}/enable"),
            ("POST", f"{API}/rules/{segment}/disable"),
            ("POST", f"{API}/rules/{segment}/rollback"),
            ("GET", f"{API}/keys?workspace={segment}"),
            ("GET", f"{API}/keys?include_revoked={segment}"),
        ]
    with gateway.http() as http:
        for method, path in requests:
            body = {"version": 1} if path.endswith("rollback") else {"name": "n"}
            response = http.request(
                method, path, json=body if method in ("PATCH", "PUT", "POST") else None
            )
            if not 400 <= response.status_code < 500:
                failures.append(
                    f"{method} {path[:80]}: {response.status_code} {response.text[:200]}"
                )
                continue
            error = error_of(response, response.status_code)
            if len(error["message"]) > 2_000:
                failures.append(f"{method} {path[:80]}: a message of {len(error['message'])}")
    assert not failures, "\n".join(failures)
    assert_no_traceback(watch.since(mark))
    with gateway.http() as http:
        assert http.get(f"{API}/keys").status_code == 200


def test_keys_made_with_far_but_valid_times_work(watched: tuple[GatewayProcess, LogWatch]) -> None:
    """The edges of the range are taken, stored on both backends, and read back."""
    gateway, watch = watched
    with gateway.http() as http:
        for when, shown in [
            ("9999-12-30T23:59:59Z", "9999-12-30T23:59:59Z"),
            ("9999-12-31T10:00:00+12:00", "9999-12-30T22:00:00Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ]:
            created = http.post(f"{API}/keys", json={"name": "far", "expires_at": when})
            assert created.status_code == 201, created.text
            body = created.json()
            assert body["expires_at"] == shown
            assert http.get(f"{API}/keys/{body['id']}").json()["expires_at"] == shown
            simulated = http.post(
                f"{API}/rules/simulate",
                json={
                    "request": {"model": "mock-gpt", "messages": HELLO},
                    "time": when,
                    "rules": [
                        {
                            "timezone": "Pacific/Kiritimati",
                            "when": {"time.hour": {"gte": 0}},
                            "then": {"tag": ["late"]},
                        },
                        {
                            "id": "west",
                            "timezone": "Etc/GMT+12",
                            "continue": True,
                            "when": {
                                "time.weekday": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                            },
                            "then": {"tag": ["west"]},
                        },
                    ],
                },
            )
            assert simulated.status_code == 200, simulated.text
    assert_no_traceback(watch.since(0))
