"""The pipeline's first stage: who is asking (the key), what they sent (the body, within its
size limit, decoded and validated), and the request's tags and metadata."""

from __future__ import annotations

import time

import msgspec

from gateway.entry.auth import Authenticator
from gateway.entry.validation import decode_object, validate_chat, validate_embeddings
from gateway.errors import GatewayError, body_too_large, invalid_request
from gateway.exchange import ClientGone, Exchange, Receive, Send
from rules.context import routing_features

MAX_TAGS = 32
MAX_TAG_LENGTH = 64
MAX_METADATA_BYTES = 8192


class EntryStage:
    """Authenticate, read the body, turn an inbound API's body into the chat request, validate."""

    __slots__ = ("authenticator", "max_body_bytes")

    def __init__(self, authenticator: Authenticator, max_body_bytes: int) -> None:
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        await self.authenticate(exchange)
        body = await self.read_body(exchange, receive)
        payload = decode_object(body)
        inbound = exchange.inbound
        if inbound is not None:
            if inbound.prepare is not None:
                await inbound.prepare(payload, exchange.key)
            payload = inbound.to_chat(payload)
        model = (validate_embeddings if exchange.call == "embeddings" else validate_chat)(payload)
        exchange.payload = payload
        exchange.requested_model = model
        exchange.stream = payload.get("stream") is True
        user = payload.get("user")
        exchange.end_user = user if isinstance(user, str) else None
        exchange.features = routing_features(payload, model, len(body))
        if exchange.operation != "chat":
            exchange.features["operation"] = exchange.operation
        return False

    async def authenticate(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        try:
            exchange.key = await self.authenticator.authenticate(
                exchange.headers.get("authorization")
            )
        except GatewayError:
            exchange.trace.add_span("auth", "gateway", started, time.perf_counter(), status="error")
            raise
        exchange.trace.add_span(
            "auth",
            "gateway",
            started,
            time.perf_counter(),
            attributes={"key.id": exchange.key.key_id, "key.role": exchange.key.role},
        )
        _read_tags_and_metadata(exchange)
        for tag in exchange.key.default_tags:
            if tag not in exchange.tags:
                exchange.tags.append(tag)

    async def read_body(self, exchange: Exchange, receive: Receive) -> bytes:
        declared = exchange.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise body_too_large(self.max_body_bytes)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > self.max_body_bytes:
                raise body_too_large(self.max_body_bytes)
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise body_too_large(self.max_body_bytes)
            parts.append(chunk)
        return b"".join(parts)


def _read_tags_and_metadata(exchange: Exchange) -> None:
    tags = exchange.headers.get("x-steerway-tags")
    if tags:
        exchange.tags = [t.strip()[:MAX_TAG_LENGTH] for t in tags.split(",") if t.strip()][
            :MAX_TAGS
        ]
    raw = exchange.headers.get("x-steerway-metadata")
    if raw:
        if len(raw) > MAX_METADATA_BYTES:
            raise invalid_request(
                f"The x-steerway-metadata header is larger than {MAX_METADATA_BYTES} bytes.",
                param="x-steerway-metadata",
            )
        try:
            metadata = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            metadata = None
        if not isinstance(metadata, dict):
            raise invalid_request(
                "The x-steerway-metadata header must be a JSON object.",
                param="x-steerway-metadata",
            )
        exchange.metadata = metadata
