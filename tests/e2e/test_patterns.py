"""User-supplied regular expressions through a running gateway: none can stall it.

`(a+)+$` over thirty `a`s and a `!` backtracks for minutes in Python's `re`, and a search holds
the event loop: every tenant of the worker waits, `/healthz` included. Rules (from the config
file and from the admin API) and deny-list patterns run on RE2, which answers in time linear in
the text; what RE2 cannot take is refused when it is loaded, with the pattern's path.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rules.store import RuleStore
from telemetry.db import create_engine
from tests.e2e.conftest import (
    STEERWAY,
    Database,
    GatewayProcess,
    MockProcess,
    mock_config,
)

EVIL = "(a+)+$"
OVERLAPPING = "(a|aa|aaa)+$"
EVIL_PROMPT = "a" * 30 + "!"
# Generous for a shared machine; `re` needs minutes for EVIL over EVIL_PROMPT.
PROMPT_ANSWER_SECONDS = 15.0


def _config(mock: MockProcess) -> dict[str, Any]:
    return mock_config(
        mock,
        rules=[
            {
                "id": "config-evil-regex",
                "when": {"all": [{"tags": {"contains": "config"}}, {"prompt": {"regex": EVIL}}]},
                "then": {"tag": "config-regex-matched"},
            }
        ],
        guardrails={
            "definitions": {
                "evil-deny": {
                    "kind": "deny_list",
                    # an overlapping alternation: `re` takes about 30 s over EVIL_PROMPT
                    "patterns": [OVERLAPPING],
                    "action": "log",
                }
            },
            "default": ["evil-deny"],
        },
    )


@pytest.fixture(scope="module")
def steered(
    backend_database: Database, mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        backend_database,
        _config(mock_provider),
        tmp_path_factory.mktemp("patterns"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _chat(gateway: GatewayProcess, prompt: str, tags: str) -> httpx.Response:
    with httpx.Client(
        base_url=gateway.url,
        headers={"Authorization": f"Bearer {gateway.master_key}", "x-steerway-tags": tags},
        timeout=PROMPT_ANSWER_SECONDS,
    ) as http:
        return http.post(
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": prompt}]},
        )


def _answered_while_healthy(gateway: GatewayProcess, prompt: str, tags: str) -> httpx.Response:
    """Send four requests at once and poll /healthz while they run: every answer and every
    health check must come back within the bound."""
    with ThreadPoolExecutor(max_workers=5) as pool:
        chats = [pool.submit(_chat, gateway, prompt, tags) for _ in range(4)]
        with httpx.Client(base_url=gateway.url, timeout=PROMPT_ANSWER_SECONDS) as http:
            while not all(chat.done() for chat in chats):
                assert http.get("/healthz").status_code == 200
                time.sleep(0.05)
        responses = [chat.result() for chat in chats]
    for response in responses:
        assert response.status_code == 200, response.text
    return responses[0]


def test_a_config_rule_with_a_catastrophic_regex_is_answered_and_health_stays_up(
    steered: GatewayProcess,
) -> None:
    response = _answered_while_healthy(steered, EVIL_PROMPT, "config")
    assert response.headers.get("x-steerway-rules") is None
    assert response.headers["x-steerway-guardrails"] == "evil-deny=pass"
    matching = _chat(steered, "x" + "a" * 30, "config")
    assert matching.headers["x-steerway-rules"] == "config-evil-regex"
    assert matching.headers["x-steerway-guardrails"] == "evil-deny=flagged"


def test_a_rule_created_through_the_admin_api_is_answered_and_health_stays_up(
    steered: GatewayProcess,
) -> None:
    rule = {
        "id": "api-evil-regex",
        "when": {
            "all": [
                {"tags": {"contains": "api"}},
                {"any": [{"prompt": {"regex": EVIL}}, {"metadata.x": {"regex": EVIL}}]},
            ]
        },
        "then": {"tag": "api-regex-matched"},
    }
    with steered.http() as admin:
        created = admin.post("/admin/api/rules", json=rule)
        assert created.status_code == 201, created.text
        try:
            response = _answered_while_healthy(steered, EVIL_PROMPT, "api")
            assert response.headers.get("x-steerway-rules") is None
            matching = _chat(steered, "b" + "a" * 30, "api")
            assert matching.headers["x-steerway-rules"] == "api-evil-regex"
        finally:
            admin.delete("/admin/api/rules/api-evil-regex")


@pytest.mark.parametrize(
    ("regex", "hint"),
    [
        (r"(?=secret)\w+", "look-ahead (?=...) is not supported"),
        (r"(\w)\1", "back-references are not supported"),
        (r"(?<!no )refund", "look-behind (?<!...) is not supported"),
    ],
)
def test_the_admin_api_refuses_a_pattern_re2_cannot_take_with_its_path(
    steered: GatewayProcess, regex: str, hint: str
) -> None:
    rule = {"id": "refused-regex", "when": {"prompt": {"regex": regex}}, "then": {"tag": "x"}}
    with steered.http() as admin:
        refused = admin.post("/admin/api/rules", json=rule)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_rule"
        assert error["param"] == "rules[0].when.prompt.regex"
        assert "rules[0].when.prompt.regex: invalid regular expression: " in error["message"]
        assert hint in error["message"]
        assert admin.get("/admin/api/rules/refused-regex").status_code == 404


def test_a_stored_rule_re2_cannot_take_is_left_out_at_startup_with_its_path(
    backend_database: Database, mock_provider: MockProcess, tmp_path: Path
) -> None:
    """A rule stored before patterns ran on RE2 (written straight to the store here) does not
    stop the gateway: it is left out, logged and listed with its problem."""
    rule_id = "stored-lookahead-" + secrets.token_hex(4)
    document = {
        "id": rule_id,
        "priority": 100,
        "enabled": True,
        "when": {"prompt": {"regex": "(?=refund)"}},
        "then": {"tag": "x"},
    }

    async def store() -> None:
        engine = create_engine(backend_database.url)
        try:
            await RuleStore(engine).create(document, author="an earlier version")
        finally:
            await engine.dispose()

    asyncio.run(store())
    gateway = GatewayProcess(
        backend_database,
        mock_config(mock_provider),
        tmp_path,
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        with gateway.http() as admin:
            listed = {item["id"]: item for item in admin.get("/admin/api/rules").json()["data"]}
            assert listed[rule_id]["in_force"] is False
            (problem,) = listed[rule_id]["problems"]
            assert problem.startswith("rules[0].when.prompt.regex: invalid regular expression: ")
            assert "look-ahead (?=...) is not supported" in problem
            assert _chat(gateway, "refund please", "").status_code == 200
            admin.delete(f"/admin/api/rules/{rule_id}")
    finally:
        log = gateway.stop()
    assert f"rule '{rule_id}' left out: rules[0].when.prompt.regex:" in log
    assert "Traceback" not in log


BAD_PATTERNS_CONFIG = {
    "models": {"m": [{"provider": "mock", "model": "mock-gpt"}]},
    "rules": [
        {"id": "backref", "when": {"prompt": {"regex": r"(\w)\1"}}, "then": {"tag": "x"}},
        {"id": "list", "when": {"tags": {"regex": "(?<=a)b"}}, "then": {"tag": "x"}},
    ],
    "guardrails": {
        "definitions": {
            "deny": {"kind": "deny_list", "patterns": ["fine", "a++"], "action": "block"},
        }
    },
}
BAD_PATTERNS_PROBLEMS = [
    "rules[0].when.prompt.regex: invalid regular expression: invalid escape sequence: \\1 "
    "(back-references are not supported; patterns use RE2 syntax)",
    "rules[1].when.tags.regex: invalid regular expression: invalid perl operator: (?<= "
    "(look-behind (?<=...) is not supported; patterns use RE2 syntax)",
    "guardrails.definitions.deny.patterns[1]: invalid regular expression: bad repetition "
    "operator: ++ (possessive quantifiers are not needed: RE2 never backtracks; patterns use "
    "RE2 syntax)",
]


def _bad_patterns_file(tmp_path: Path, mock: MockProcess) -> Path:
    config = {
        "providers": {"mock": {"type": "openai", "base_url": mock.base_url}},
        **BAD_PATTERNS_CONFIG,
    }
    path = tmp_path / "patterns.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_check_config_refuses_patterns_re2_cannot_take_with_their_paths(
    tmp_path: Path, mock_provider: MockProcess
) -> None:
    path = _bad_patterns_file(tmp_path, mock_provider)
    result = subprocess.run(
        [STEERWAY, "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert lines[0] == f"{path}: {len(BAD_PATTERNS_PROBLEMS)} problems"
    assert sorted(lines[1:]) == sorted(BAD_PATTERNS_PROBLEMS)


def test_serve_refuses_patterns_re2_cannot_take_with_their_paths(
    tmp_path: Path, mock_provider: MockProcess, backend_database: Database
) -> None:
    path = _bad_patterns_file(tmp_path, mock_provider)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEERWAY_")}
    environ.update(STEERWAY_CONFIG=str(path), STEERWAY_DATABASE_URL=backend_database.url)
    result = subprocess.run(
        [STEERWAY, "serve", "--port", "1"], capture_output=True, text=True, env=environ, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    for problem in BAD_PATTERNS_PROBLEMS:
        assert problem in output, (problem, output)
    assert "Traceback" not in output
