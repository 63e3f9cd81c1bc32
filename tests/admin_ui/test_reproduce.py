"""A recorded request as a curl command and as a link into the rules simulator."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from admin_ui import reproduce

MESSAGES = [{"role": "user", "content": 'It\'s "quoted" and costs $5 `now`'}]


def trace(**extra: Any) -> dict[str, Any]:
    return {
        "route": "/v1/chat/completions",
        "requested_model": "small",
        "features": {
            "model": "small",
            "stream": True,
            "temperature": 0.2,
            "max_tokens": 50,
            "estimated_input_tokens": 12,
            "message_count": 1,
        },
        "end_user": "customer-4821",
        "tags": ["premium", "team-default", "routed-premium"],
        "metadata": {"tier": "free"},
        "api_key_id": "01key",
        "workspace_id": "0" * 32,
        "started_at": datetime(2026, 12, 6, 13, 55, 6, 339_000, tzinfo=UTC),
        **extra,
    }


RULES = [
    {
        "type": "rule_evaluation",
        "rule_id": None,
        "output": {"route": "large", "tags": ["routed-premium"]},
    },
    {"type": "rule_evaluation", "rule_id": "premium", "output": {"tag": ["ignored"]}},
]


def recorded(**extra: Any) -> reproduce.RecordedRequest:
    return reproduce.recorded_request(
        trace(**extra), [{"prompt": None}, {"prompt": MESSAGES}], RULES, ["team-default"]
    )


def test_the_request_is_rebuilt_from_what_was_recorded() -> None:
    request = recorded()
    assert request.exact
    assert request.body == {
        "model": "small",
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": 50,
        "temperature": 0.2,
        "user": "customer-4821",
    }
    # tags the key and the rules added are not the client's
    assert request.tags == ["premium"]
    assert request.metadata == {"tier": "free"}


def test_the_curl_command_runs_in_a_shell_and_never_holds_a_key() -> None:
    command = reproduce.curl_command("http://127.0.0.1:8080/", recorded())
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["curl", "http://127.0.0.1:8080/v1/chat/completions", "-N"]
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    assert headers == [
        "Authorization: Bearer $STEERWAY_KEY",
        "Content-Type: application/json",
        "x-steerway-tags: premium",
        'x-steerway-metadata: {"tier": "free"}',
    ]
    body = json.loads(words[words.index("-d") + 1])
    assert body["messages"] == MESSAGES
    # double quotes around $STEERWAY_KEY: the shell puts the reader's own key there
    assert '"Authorization: Bearer $STEERWAY_KEY"' in command


def test_without_stored_content_the_messages_are_a_placeholder() -> None:
    request = reproduce.recorded_request(trace(), [{"prompt": None}], [], [])
    assert not request.exact
    assert request.body["messages"] == reproduce.PLACEHOLDER_MESSAGES
    assert request.tags == ["premium", "team-default", "routed-premium"]


def test_embeddings_send_their_input() -> None:
    request = reproduce.recorded_request(
        trace(route="/v1/embeddings", features={"model": "embed"}, end_user=None),
        [{"prompt": ["a", "b"]}],
        [],
    )
    assert request.body == {"model": "embed", "input": ["a", "b"]}
    command = reproduce.curl_command("http://gw", request)
    assert "http://gw/v1/embeddings" in command and "-N" not in command


def test_the_simulator_link_carries_the_simulation_fields() -> None:
    url = reproduce.simulator_url(recorded(), trace(), key_name="billing app")
    parts = urlsplit(url)
    assert parts.path == "/admin/rules/simulate"
    query = parse_qs(parts.query)
    assert json.loads(query["request"][0])["messages"] == MESSAGES
    assert query["operation"] == ["chat"]
    assert query["tags"] == ["premium"]
    assert json.loads(query["metadata"][0]) == {"tier": "free"}
    assert query["key"] == ["01key"] and query["key_name"] == ["billing app"]
    assert query["workspace"] == ["0" * 32]
    assert query["user"] == ["customer-4821"]
    assert query["time"] == ["2026-12-06T13:55:06.339Z"]


def test_a_request_of_another_api_is_sent_again_as_its_chat_request() -> None:
    request = recorded(route="/v1/messages")
    assert request.route == "/v1/chat/completions"
    assert request.body["messages"] == MESSAGES
