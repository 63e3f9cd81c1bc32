"""The mock provider's aiohttp application: OpenAI routes plus `/_mock/*` introspection."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import msgspec
from aiohttp import web

from providers.mock.anthropic import MESSAGES_PATH, AnthropicMessages
from providers.mock.azure import add_azure_routes
from providers.mock.chat_plan import plan_chat
from providers.mock.chat_responses import MALFORMED_BODY, ChatStream, completion_body
from providers.mock.embeddings import embeddings_body
from providers.mock.errors import MockRequestError, error_response, injected_error_response
from providers.mock.faults import FaultGates
from providers.mock.gemini import GEMINI_PATH, GeminiModels
from providers.mock.moderations import plan_moderation
from providers.mock.responses import RESPONSES_PATH, MockResponses
from providers.mock.settings import (
    Behaviour,
    MockControl,
    MockSettings,
    apply_control,
    default_behaviour,
)
from providers.mock.stats import MockStats, RecordedRequest

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
MODERATIONS_PATH = "/v1/moderations"
MODEL_IDS = ("mock-gpt", "mock-gpt-large", "mock-embedding")
MAX_BODY_BYTES = 64 * 1024 * 1024
_MODELS_CREATED = 1_700_000_000
_DISCONNECT_POLL_SECONDS = 0.05

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def _model_entry(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _MODELS_CREATED, "owned_by": "steerway"}


_MODELS_BODY = _encode({"object": "list", "data": [_model_entry(m) for m in MODEL_IDS]})


class MockProvider:
    """Request handlers and the state they share (settings, counters, the last request)."""

    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self.stats = MockStats()
        self.faults = FaultGates()
        self.last_request: RecordedRequest | None = None
        self._default_behaviour = default_behaviour(settings)
        self._expected_authorization = (
            None if settings.require_api_key is None else f"Bearer {settings.require_api_key}"
        )

    def clear_state(self) -> None:
        """Zero the counters, forget the last request and restart every `mock.scenario`."""
        self.stats.reset()
        self.faults.reset()
        self.last_request = None

    def count_model(self, model: object) -> None:
        if isinstance(model, str) and model:
            self.stats.requests_by_model[model] += 1

    async def chat_completions(
        self, request: web.Request, *, url_model: str | None = None
    ) -> web.StreamResponse:
        """`url_model`: the model named by the route (an Azure deployment) instead of the body."""
        self.stats.requests[CHAT_PATH] += 1
        try:
            body = await self._read_body(request)
            self.count_model(url_model or body.get("model"))
            behaviour = self._behaviour(body)
            plan = plan_chat(body, behaviour)
        except MockRequestError as error:
            return error.to_response()
        behaviour = self.faults.resolve(behaviour, url_model or plan.model)
        if behaviour.hang:
            return await self._hang(request)
        if behaviour.error is not None:
            return await self._injected_error(behaviour)
        if plan.stream:
            return await ChatStream(request, plan, behaviour, self.stats).run()
        try:
            await _sleep_ms(behaviour.latency_ms)
        except asyncio.CancelledError:
            self.stats.requests_cancelled += 1
            raise
        if behaviour.malformed:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        return web.Response(
            body=completion_body(plan, include_usage=not behaviour.no_usage),
            content_type="application/json",
        )

    async def embeddings(
        self, request: web.Request, *, url_model: str | None = None
    ) -> web.StreamResponse:
        self.stats.requests[EMBEDDINGS_PATH] += 1
        try:
            body = await self._read_body(request)
            self.count_model(url_model or body.get("model"))
            behaviour = self._behaviour(body)
            payload = embeddings_body(
                body, self.settings.embedding_dimensions, with_usage=not behaviour.no_usage
            )
        except MockRequestError as error:
            return error.to_response()
        behaviour = self.faults.resolve(behaviour, url_model or body["model"])
        if behaviour.hang:
            return await self._hang(request)
        if behaviour.error is not None:
            return await self._injected_error(behaviour)
        try:
            await _sleep_ms(behaviour.latency_ms)
        except asyncio.CancelledError:
            self.stats.requests_cancelled += 1
            raise
        if behaviour.malformed:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        return web.Response(body=payload, content_type="application/json")

    async def moderations(self, request: web.Request) -> web.StreamResponse:
        """Scores from the words of each input (see `providers.mock.moderations`)."""
        self.stats.requests[MODERATIONS_PATH] += 1
        try:
            body = await self._read_body(request)
            self.count_model(body.get("model"))
            plan = plan_moderation(body)
        except MockRequestError as error:
            return error.to_response()
        try:
            await _sleep_ms(plan.delay_ms)
        except asyncio.CancelledError:
            self.stats.requests_cancelled += 1
            raise
        if plan.error_status is not None:
            return error_response(plan.error_status)
        return web.Response(body=plan.body, content_type="application/json")

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests[MODELS_PATH] += 1
        try:
            self._authorize(request)
        except MockRequestError as error:
            return error.to_response()
        return web.Response(body=_MODELS_BODY, content_type="application/json")

    async def retrieve_model(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests[MODELS_PATH + "/{model}"] += 1
        try:
            self._authorize(request)
        except MockRequestError as error:
            return error.to_response()
        model_id = request.match_info["model"]
        if model_id not in MODEL_IDS:
            return error_response(404, f"The model '{model_id}' does not exist", param="model")
        return web.Response(body=_encode(_model_entry(model_id)), content_type="application/json")

    def stats_snapshot(self) -> dict[str, Any]:
        """The counters, plus how many requests each `mock.scenario` has seen."""
        return {**self.stats.snapshot(), "scenarios": self.faults.counts()}

    async def show_stats(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_encode(self.stats_snapshot()), content_type="application/json")

    async def show_last_request(self, request: web.Request) -> web.StreamResponse:
        if self.last_request is None:
            return error_response(404, "No chat or embeddings request has arrived yet.")
        return web.Response(
            body=_encode(self.last_request.to_dict()), content_type="application/json"
        )

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.clear_state()
        return web.Response(body=_encode(self.stats_snapshot()), content_type="application/json")

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        self._authorize(request)
        raw = await request.read()
        try:
            body = _decode(raw)
        except msgspec.DecodeError:
            raise MockRequestError(
                "We could not parse the JSON body of your request. The body must be a JSON object."
            ) from None
        if not isinstance(body, dict):
            raise MockRequestError("The request body must be a JSON object.")
        self.last_request = RecordedRequest(request.method, request.path, request.headers, body)
        return body

    def _authorize(self, request: web.Request) -> None:
        expected = self._expected_authorization
        if expected is None:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            message = "Incorrect API key provided." if given else "You didn't provide an API key."
            raise MockRequestError(message, status=401, code="invalid_api_key")

    def _behaviour(self, body: dict[str, Any]) -> Behaviour:
        control = body.get("mock")
        if control is None:
            return self._default_behaviour
        try:
            parsed = msgspec.convert(control, MockControl)
        except msgspec.ValidationError as error:
            raise MockRequestError(f"Invalid 'mock' control: {error}", param="mock") from None
        return apply_control(self._default_behaviour, parsed)

    async def _injected_error(self, behaviour: Behaviour) -> web.Response:
        assert behaviour.error is not None
        await _sleep_ms(behaviour.latency_ms)
        return injected_error_response(
            behaviour.error,
            behaviour.retry_after,
            code=behaviour.error_code,
            message=behaviour.error_message,
        )

    async def _hang(self, request: web.Request) -> web.Response:
        """Never answer; return once the client has gone away."""
        try:
            # aiohttp offers no disconnect event to wait on outside handler cancellation.
            while not _client_gone(request):  # noqa: ASYNC110
                await asyncio.sleep(_DISCONNECT_POLL_SECONDS)
        except asyncio.CancelledError:
            self.stats.requests_cancelled += 1
            raise
        self.stats.requests_cancelled += 1
        return web.Response(status=499)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000.0)


PROVIDER_KEY = web.AppKey("mock_provider", MockProvider)


def create_mock_app(settings: MockSettings | None = None) -> web.Application:
    """The mock provider as an aiohttp application, for any aiohttp runner.

    Run it with `handler_cancellation=True` (as `start_mock_server` does) so a client that goes
    away interrupts a waiting handler at once instead of at its next write.
    """
    provider = MockProvider(settings or MockSettings())
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PROVIDER_KEY] = provider
    app.router.add_post(CHAT_PATH, provider.chat_completions)
    app.router.add_post(EMBEDDINGS_PATH, provider.embeddings)
    app.router.add_post(MODERATIONS_PATH, provider.moderations)
    app.router.add_post(MESSAGES_PATH, AnthropicMessages(provider).handle)
    app.router.add_post(RESPONSES_PATH, MockResponses(provider).handle)
    app.router.add_post(GEMINI_PATH, GeminiModels(provider).handle)
    add_azure_routes(app, provider)
    app.router.add_get(MODELS_PATH, provider.list_models)
    app.router.add_get(MODELS_PATH + "/{model}", provider.retrieve_model)
    app.router.add_get("/healthz", provider.health)
    app.router.add_get("/_mock/stats", provider.show_stats)
    app.router.add_get("/_mock/last-request", provider.show_last_request)
    app.router.add_post("/_mock/reset", provider.reset)
    return app
