"""Calls to a public model of the gateway from a background job (the judge of an evaluation),
outside the proxy's request path, each recorded as a trace of its own.

A public model's deployments are tried in order until one answers. A deployment on a `gemini`
provider is called through the `google-genai` SDK (its HTTP options pointed at the provider's
`base_url`), asking for JSON that follows the response schema; any other through the provider's
adapter, with a `json_schema` response format. Pricing and recording are
`gateway.upstream.public_model_calls`': the trace with `source = 'evaluation'`, each attempt as an
interaction with `purpose = 'evaluation'`, so users' usage figures leave them out.

The SDK takes most of a second to import: it is imported on the first call to a `gemini`
deployment, not by every process that starts a gateway.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from gateway.config.file import ProviderConfig
from gateway.upstream.public_model_calls import Attempt, CallLabels, PublicModelCalls, total
from telemetry.evaluation.judge import JudgeAnswer, JudgeCallFailed, JudgeRequest

if TYPE_CHECKING:
    from google import genai
    from google.genai import types as genai_types

LABELS: Final = CallLabels(
    source="evaluation",
    route="evaluation",
    purpose="evaluation",
    request_prefix="eval",
    error_type="judge_call_failed",
)
_GEMINI_API_VERSIONS: Final = ("v1beta", "v1alpha", "v1")
_REFUSED_FINISH: Final = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})


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


class ModelCaller(PublicModelCalls):
    """`telemetry.evaluation.judge.JudgeCaller` over the gateway's config."""

    labels = LABELS

    @cached_property
    def _gemini(self) -> dict[tuple[str, int], genai.Client]:
        """The SDK's clients, one per provider and timeout, made on first use."""
        return {}

    async def close(self) -> None:
        clients = list(self._gemini.values())
        self._gemini.clear()
        for client in clients:
            try:
                await client.aio.aclose()
            except Exception:
                continue

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        if not self.serves(request.model):
            raise JudgeCallFailed(f"no public model '{request.model[:100]}' in the config")

        async def send(attempt: Attempt, timeout_s: float) -> None:
            if attempt.provider.type == "gemini":
                await self._call_gemini(attempt, request, timeout_s)
            else:
                await self._call_adapter(attempt, request, timeout_s)

        outcome = await self.call(request, send)
        attempts, last = outcome.attempts, outcome.last
        if last is None or last.error is not None:
            reason = last.error if last is not None else "timeout"
            raise JudgeCallFailed(reason or "failed", trace_id=outcome.trace_id)
        return JudgeAnswer(
            text=last.text,
            prompt_tokens=total(a.prompt_tokens for a in attempts),
            completion_tokens=total(a.completion_tokens for a in attempts),
            cost_usd=total(a.cost_usd for a in attempts),
            latency_ms=(last.ended - outcome.started) * 1000.0,
            trace_id=outcome.trace_id,
            refused=last.refused,
        )

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

    async def _call_gemini(self, attempt: Attempt, request: JudgeRequest, timeout_s: float) -> None:
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
        self, attempt: Attempt, request: JudgeRequest, timeout_s: float
    ) -> None:
        payload: dict[str, Any] = {
            "messages": request.messages,
            "temperature": request.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.schema},
            },
        }
        message = await self.call_adapter(attempt, payload, request.model, timeout_s)
        refusal = message.get("refusal")
        attempt.refused = isinstance(refusal, str) and bool(refusal)
        content = message.get("content")
        attempt.text = content if isinstance(content, str) else None
