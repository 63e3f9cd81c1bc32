"""A recorded request sent again: as a `curl` command, or prefilled in the rules simulator.

Both are rebuilt from what the trace kept: the model the client asked for, the routing features
(stream, max_tokens, temperature, n), the end user, the client's own tags and metadata, and the
messages when content was stored. Tags a rule or the key added are left out, since sending them
would change what the rules see. The key is never part of it: the command reads it from
`$STEERWAY_KEY`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from admin_ui.formatting import iso_utc

SIMULATOR_PATH = "/admin/rules/simulate"
REPLAYED_PARAMETERS = ("stream", "max_tokens", "max_completion_tokens", "temperature", "n")
PLACEHOLDER_MESSAGES = [{"role": "user", "content": "(content was not stored)"}]
EMBEDDINGS_ROUTE = "/v1/embeddings"
CHAT_ROUTE = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    route: str
    body: dict[str, Any]
    tags: list[str]
    metadata: dict[str, Any]
    exact: bool
    """False when the content was not stored and the body holds a placeholder."""


def recorded_request(
    trace: Mapping[str, Any],
    interactions: Sequence[Mapping[str, Any]],
    decisions: Sequence[Mapping[str, Any]],
    key_default_tags: Iterable[str] = (),
) -> RecordedRequest:
    features = trace.get("features") or {}
    # Requests of the other inbound APIs (/v1/messages, /v1/completions ...) are recorded as the
    # chat request they were translated into: they are sent again as that.
    route = EMBEDDINGS_ROUTE if trace.get("route") == EMBEDDINGS_ROUTE else CHAT_ROUTE
    model = features.get("model") or trace.get("requested_model") or ""
    body: dict[str, Any] = {"model": model}
    prompt = next((row["prompt"] for row in interactions if row.get("prompt") is not None), None)
    exact = prompt is not None
    if route == EMBEDDINGS_ROUTE:
        body["input"] = prompt if exact else "(content was not stored)"
    else:
        body["messages"] = prompt if exact else PLACEHOLDER_MESSAGES
        for name in REPLAYED_PARAMETERS:
            value = features.get(name)
            if value is not None and not (name == "stream" and value is False):
                body[name] = value
    if trace.get("end_user"):
        body["user"] = trace["end_user"]
    added = set(key_default_tags) | set(_rule_tags(decisions))
    tags = [tag for tag in trace.get("tags") or [] if tag not in added]
    metadata = dict(trace.get("metadata") or {})
    return RecordedRequest(route=route, body=body, tags=tags, metadata=metadata, exact=exact)


def curl_command(base_url: str, request: RecordedRequest) -> str:
    lines = [
        f"curl {shlex.quote(base_url.rstrip('/') + request.route)}",
        '-H "Authorization: Bearer $STEERWAY_KEY"',
        "-H 'Content-Type: application/json'",
    ]
    if request.body.get("stream") is True:
        lines.insert(1, "-N")
    if request.tags:
        lines.append(f"-H {shlex.quote('x-steerway-tags: ' + ','.join(request.tags))}")
    if request.metadata:
        header = "x-steerway-metadata: " + json.dumps(request.metadata, ensure_ascii=False)
        lines.append(f"-H {shlex.quote(header)}")
    lines.append(f"-d {shlex.quote(json.dumps(request.body, indent=2, ensure_ascii=False))}")
    return " \\\n  ".join(lines)


def simulator_url(
    request: RecordedRequest, trace: Mapping[str, Any], key_name: str | None = None
) -> str:
    """`/admin/rules/simulate?…` with the fields of `POST /admin/api/rules/simulate` as query
    parameters: `request` and `metadata` as JSON text, `tags` repeated, the others as text."""
    parameters: list[tuple[str, str]] = [
        ("request", json.dumps(request.body, ensure_ascii=False, separators=(",", ":"))),
        ("operation", "embeddings" if request.route == EMBEDDINGS_ROUTE else "chat"),
    ]
    parameters += [("tags", tag) for tag in request.tags]
    if request.metadata:
        parameters.append(("metadata", json.dumps(request.metadata, separators=(",", ":"))))
    for name, value in (
        ("key", trace.get("api_key_id")),
        ("key_name", key_name),
        ("workspace", trace.get("workspace_id")),
        ("user", trace.get("end_user")),
    ):
        if value:
            parameters.append((name, str(value)))
    if trace.get("started_at") is not None:
        parameters.append(("time", iso_utc(trace["started_at"])))
    return f"{SIMULATOR_PATH}?{urlencode(parameters)}"


def _rule_tags(decisions: Sequence[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    for decision in decisions:
        if decision.get("type") != "rule_evaluation" or decision.get("rule_id") is not None:
            continue
        output = decision.get("output")
        if isinstance(output, Mapping):
            tags = output.get("tags") or []
            found += [tags] if isinstance(tags, str) else [str(tag) for tag in tags]
    return found
