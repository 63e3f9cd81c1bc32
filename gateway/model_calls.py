"""Calls to a public model of the gateway from a background job (the judge of an evaluation),
outside the proxy's request path, each recorded as a trace of its own.

A public model's deployments are tried in order until one answers. A deployment on a `gemini`
provider is called through the `google-genai` SDK (its HTTP options pointed at the provider's
`base_url`), asking for JSON that follows the response schema; any other through the provider's
adapter, with a `json_schema` response format. The call is priced with the gateway's price
table and recorded through the recorder: the trace with `source = 'evaluation'`, each attempt
as an interaction with `purpose = 'evaluation'`, so users' usage figures leave them out.

Errors name the provider and what went wrong (an HTTP status, a timeout), never a credential
or the provider's own error text.

The SDK takes most of a second to import: it is imported on the first call to a `gemini`
deployment, not by every process that starts a gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from gateway.config import Deployment, GatewayConfig, ProviderConfig
from providers.base import ProviderAdapter
from providers.errors import UpstreamFailure
from providers.pricing import PriceTable
from telemetry.evaluation.judge import JudgeAnswer, JudgeCallFailed, JudgeRequest
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord

if TYPE_CHECKING:
    from google import genai
    from google.genai import types as genai_types

ROUTE: Final = "evaluation"
_GEMINI_API_VERSIONS: Final = ("v1beta", "v1alpha", "v1")
_REFUSED_FINISH: Final = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})


@dataclass(slots=True)
class _Attempt:
    deployment: Deployment
    provider: ProviderConfig
    started: float
    ended: float = 0.0
    text: str | None = None
    refused: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    error: str | None = None
    http_status: int | None = None


def gemini_http_options(provider: ProviderConfig, timeout_s: float) -> genai_types.HttpOptions:
    """The SDK's HTTP options for a `gemini` provider: its `base_url` split into the root and
    the API version the SDK appends itself (`.../v1beta` → root + `v1beta`)."""
    from google.genai import types as genai_types

    parts = urlsplit(provider.base_url)
    path = parts.path.rstrip("/")
    version = "v1beta"
    last = path.rsplit("/", 1)[-1]
    if last in _GEMINI_API_VERSIONS:
        version = last
        path = path[: -len(last)].rstrip("/")
    root = urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))
    return genai_types.HttpOptions(
        base_url=root,
        api_version=version,
        headers=dict(provider.headers),
        timeout=max(1, int(timeout_s * 1000)),
    )


class ModelCaller:
    """`telemetry.evaluation.judge.JudgeCaller` over the gateway's config."""

    def __init__(
        self,
        config: GatewayConfig,
        adapters: Mapping[str, ProviderAdapter],
        record: Callable[[TraceBundle], bool],
        *,
        store_content: bool = True,
        prices: PriceTable | None = None,
    ) -> None:
        self._config = config
        self._adapters = adapters
        self._record = record
        self._store_content = store_content
        self._prices = prices if prices is not None else config.price_table()
        self._gemini: dict[tuple[str, int], genai.Client] = {}

    async def close(self) -> None:
        clients, self._gemini = list(self._gemini.values()), {}
        for client in clients:
            try:
                await client.aio.aclose()
            except Exception:
                continue

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        deployments = self._config.deployments(request.model)
        if not deployments:
            raise JudgeCallFailed(f"no public model '{request.model[:100]}' in the config")
        trace_id = uuid7_hex()
        started = time.time()
        attempts: list[_Attempt] = []
        deadline = time.monotonic() + request.timeout_s
        for deployment in deployments:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            attempt = _Attempt(deployment, self._config.provider(deployment.provider), time.time())
            attempts.append(attempt)
            await self._attempt(attempt, request, left)
            if attempt.error is None:
                break
        self._record_trace(trace_id, request, started, attempts)
        last = attempts[-1] if attempts else None
        if last is None or last.error is not None:
            reason = last.error if last is not None else "timeout"
            raise JudgeCallFailed(reason or "failed", trace_id=trace_id)
        return JudgeAnswer(
            text=last.text,
            prompt_tokens=last.prompt_tokens,
            completion_tokens=last.completion_tokens,
            cost_usd=sum((a.cost_usd for a in attempts if a.cost_usd is not None), Decimal(0))
            if any(a.cost_usd is not None for a in attempts)
            else None,
            latency_ms=(last.ended - started) * 1000.0,
            trace_id=trace_id,
            refused=last.refused,
        )

    async def _attempt(self, attempt: _Attempt, request: JudgeRequest, timeout_s: float) -> None:
        name = attempt.provider.name
        try:
            async with asyncio.timeout(timeout_s):
                if attempt.provider.type == "gemini":
                    await self._call_gemini(attempt, request, timeout_s)
                else:
                    await self._call_adapter(attempt, request, timeout_s)
        except TimeoutError:
            attempt.error = f"{name}: timeout after {timeout_s:.3g} s"
        except UpstreamFailure as failure:
            attempt.http_status = failure.status
            detail = f"HTTP {failure.status}" if failure.status else failure.kind
            attempt.error = f"{name}: {detail}"
        except Exception as error:
            attempt.error = f"{name}: {type(error).__name__}"
        attempt.ended = time.time()
        price = attempt.deployment.price_in(self._prices)
        if price is not None:
            attempt.cost_usd = price.cost(attempt.prompt_tokens, attempt.completion_tokens)

    def _client(self, provider: ProviderConfig, timeout_s: float) -> genai.Client:
        key = (provider.name, max(1, int(timeout_s)))
        client = self._gemini.get(key)
        if client is None:
            from google import genai

            secret = provider.api_key.reveal() if provider.api_key is not None else "none"
            client = self._gemini[key] = genai.Client(
                api_key=secret, http_options=gemini_http_options(provider, timeout_s)
            )
        return client

    async def _call_gemini(
        self, attempt: _Attempt, request: JudgeRequest, timeout_s: float
    ) -> None:
        from google.genai import errors as genai_errors
        from google.genai import types as genai_types

        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        user = "\n\n".join(m["content"] for m in request.messages if m["role"] != "system")
        try:
            response = await self._client(attempt.provider, timeout_s).aio.models.generate_content(
                model=attempt.deployment.model,
                contents=user,
                config=genai_types.GenerateContentConfig(
                    system_instruction=system or None,
                    temperature=request.temperature,
                    response_mime_type="application/json",
                    response_json_schema=request.schema,
                ),
            )
        except genai_errors.APIError as error:
            attempt.http_status = error.code
            attempt.error = f"{attempt.provider.name}: HTTP {error.code}"
            return
        usage = response.usage_metadata
        if usage is not None:
            attempt.prompt_tokens = usage.prompt_token_count
            attempt.completion_tokens = usage.candidates_token_count
        candidates = response.candidates or []
        finish = candidates[0].finish_reason if candidates else None
        blocked = response.prompt_feedback is not None and bool(
            response.prompt_feedback.block_reason
        )
        attempt.refused = blocked or (finish is not None and str(finish.name) in _REFUSED_FINISH)
        attempt.text = None if attempt.refused else response.text
        attempt.http_status = 200

    async def _call_adapter(
        self, attempt: _Attempt, request: JudgeRequest, timeout_s: float
    ) -> None:
        adapter = self._adapters[attempt.provider.name]
        model = attempt.deployment.model
        payload: dict[str, Any] = {
            "model": model,
            "messages": request.messages,
            "temperature": request.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.schema},
            },
        }
        body = adapter.encode_chat(payload, model, stream=False)
        response = await adapter.send(
            "chat", body, provider_model=model, timeouts=adapter.timeout(total=timeout_s)
        )
        raw = await adapter.read_body(response)
        result = adapter.parse_chat(raw, request.model)
        attempt.prompt_tokens = result.usage.prompt_tokens
        attempt.completion_tokens = result.usage.completion_tokens
        attempt.http_status = 200
        message = _first_message(result.body)
        refusal = message.get("refusal")
        attempt.refused = isinstance(refusal, str) and bool(refusal)
        content = message.get("content")
        attempt.text = content if isinstance(content, str) else None

    def _record_trace(
        self,
        trace_id: str,
        request: JudgeRequest,
        started: float,
        attempts: list[_Attempt],
    ) -> None:
        ended = attempts[-1].ended if attempts else time.time()
        last = attempts[-1] if attempts else None
        ok = last is not None and last.error is None
        interactions = [
            InteractionRecord(
                interaction_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=request.workspace_id,
                provider=a.provider.name,
                requested_model=request.model,
                provider_model=a.deployment.model,
                deployment=a.deployment.id,
                attempt=number,
                operation="chat",
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
                total_tokens=(a.prompt_tokens or 0) + (a.completion_tokens or 0)
                if a.prompt_tokens is not None and a.completion_tokens is not None
                else None,
                cost_usd=a.cost_usd,
                started_at=a.started,
                ended_at=a.ended,
                status="ok" if a.error is None else "error",
                http_status=a.http_status,
                error_type=None if a.error is None else "judge_call_failed",
                error_message=a.error,
                prompt=request.messages if self._store_content else None,
                response=[{"index": 0, "content": a.text}]
                if self._store_content and a.text is not None
                else None,
                purpose="evaluation",
            )
            for number, a in enumerate(attempts, start=1)
        ]
        trace = TraceRecord(
            trace_id=trace_id,
            workspace_id=request.workspace_id,
            request_id=f"eval-{trace_id}",
            route=ROUTE,
            started_at=started,
            ended_at=max(ended, started),
            status="ok" if ok else "error",
            http_status=200 if ok else 502,
            requested_model=request.model,
            provider=last.provider.name if last else None,
            provider_model=last.deployment.model if last else None,
            error_type=None if ok else "judge_call_failed",
            error_message=None if ok or last is None else last.error,
            source="evaluation",
        )
        self._record(TraceBundle(trace=trace, interactions=interactions))


def _first_message(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
        message = document["choices"][0]["message"]
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}
