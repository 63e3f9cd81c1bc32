"""What a rule's condition can read about one request.

A context is built once per request from what the proxy already parsed (the routing features it
keeps with every trace), or from a recorded trace for replay. Anything costly to derive (the
prompt text, local time in a zone) is computed on first use, so rules that do not ask for it
cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

_MISSING: Any = object()


class RequestContext:
    """The request as rules see it. Attribute names match the documented field names."""

    __slots__ = (
        "_local",
        "_prompt",
        "budget",
        "estimated_input_tokens",
        "has_images",
        "has_response_format",
        "has_tools",
        "headers",
        "key",
        "key_name",
        "max_tokens",
        "message_count",
        "messages",
        "metadata",
        "model",
        "now",
        "operation",
        "stream",
        "tags",
        "temperature",
        "user",
        "workspace",
    )

    def __init__(
        self,
        *,
        model: str,
        estimated_input_tokens: int | None = None,
        message_count: int | None = None,
        has_tools: bool = False,
        has_images: bool = False,
        has_response_format: bool = False,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        user: str | None = None,
        key: str | None = None,
        key_name: str | None = None,
        workspace: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        now: float | None = None,
        budget: Mapping[str, float | None] | None = None,
        messages: Any = None,
        prompt: str | None = _MISSING,
        operation: str = "chat",
    ) -> None:
        self.model = model
        self.operation = operation
        self.estimated_input_tokens = estimated_input_tokens
        self.message_count = message_count
        self.has_tools = has_tools
        self.has_images = has_images
        self.has_response_format = has_response_format
        self.stream = stream
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.user = user
        self.key = key
        self.key_name = key_name
        self.workspace = workspace
        self.tags = tags
        self.metadata = metadata or {}
        self.headers = headers or {}
        self.now = now
        self.budget = budget or {}
        self.messages = messages
        self._prompt = prompt
        self._local: dict[str, datetime] | None = None

    @classmethod
    def from_features(
        cls,
        features: Mapping[str, Any],
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
        key_name: str | None = None,
        workspace: str | None = None,
        now: float | None = None,
        budget: Mapping[str, float | None] | None = None,
        messages: Any = None,
        prompt: str | None = _MISSING,
        operation: str | None = None,
    ) -> RequestContext:
        """From the routing features the proxy records with every trace (which name the
        operation when it is not chat)."""
        max_tokens = features.get("max_completion_tokens", features.get("max_tokens"))
        return cls(
            model=str(features.get("model", "")),
            estimated_input_tokens=features.get("estimated_input_tokens"),
            message_count=features.get("message_count"),
            has_tools=bool(features.get("has_tools")),
            has_images=bool(features.get("has_images")),
            has_response_format=bool(features.get("has_response_format")),
            stream=bool(features.get("stream")),
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            temperature=_number(features.get("temperature")),
            user=features.get("user"),
            key=key,
            key_name=key_name,
            workspace=workspace,
            tags=tags,
            metadata=metadata,
            headers=headers,
            now=now,
            budget=budget,
            messages=messages,
            prompt=prompt,
            operation=operation or str(features.get("operation") or "chat"),
        )

    @classmethod
    def from_trace(cls, row: Mapping[str, Any], *, prompt: str | None = None) -> RequestContext:
        """From a row of the `traces` table, for replay. Headers are not recorded; the prompt
        only when content is stored (pass it in)."""
        started = row.get("started_at")
        when: float | None
        if isinstance(started, datetime):
            when = (started if started.tzinfo else started.replace(tzinfo=UTC)).timestamp()
        else:
            when = float(started) if started is not None else None
        features = row.get("features") or {}
        if not features.get("model") and row.get("requested_model"):
            features = {**features, "model": row["requested_model"]}
        if features.get("user") is None and row.get("end_user"):
            features = {**features, "user": row["end_user"]}
        return cls.from_features(
            features,
            tags=row.get("tags") or (),
            metadata=row.get("metadata") or {},
            key=row.get("api_key_id"),
            workspace=row.get("workspace_id"),
            now=when,
            prompt=prompt,
        )

    @property
    def prompt(self) -> str | None:
        """The text of the last user message (text parts joined), or None without one."""
        if self._prompt is _MISSING:
            self._prompt = last_user_text(self.messages)
        return self._prompt

    def local_time(self, zone: ZoneInfo | None) -> datetime:
        """The request's time in `zone` (UTC when None), computed once per zone."""
        cache = self._local
        if cache is None:
            cache = self._local = {}
        name = zone.key if zone is not None else "UTC"
        found = cache.get(name)
        if found is None:
            found = datetime.fromtimestamp(
                self.now if self.now is not None else datetime.now(UTC).timestamp(),
                zone or UTC,
            )
            cache[name] = found
        return found


def routing_features(payload: Mapping[str, Any], model: str, body_size: int) -> dict[str, Any]:
    """What rules can match on, kept with the trace even when content is not stored."""
    user = payload.get("user")
    messages = payload.get("messages")
    features: dict[str, Any] = {
        "model": model,
        "stream": payload.get("stream") is True,
        "estimated_input_tokens": max(body_size // 4, 1),
        "user": user if isinstance(user, str) else None,
    }
    if isinstance(messages, list):
        features["message_count"] = len(messages)
        features["has_images"] = any(
            isinstance(m, dict)
            and isinstance(m.get("content"), list)
            and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
            for m in messages
        )
        features["has_tools"] = bool(payload.get("tools"))
        features["has_response_format"] = payload.get("response_format") is not None
        for name in ("max_tokens", "max_completion_tokens", "temperature", "n"):
            value = payload.get(name)
            if value is not None:
                features[name] = value
    return features


def last_user_text(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
