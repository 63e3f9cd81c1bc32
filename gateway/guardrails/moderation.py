"""Moderation guardrails on the request path: asking the moderation model, and turning its
scores into verdicts over a request's texts or an answer's choices.

Unlike the other checks, moderation is a call to a model, so it runs as a coroutine on the
event loop (the HTTP call goes through the shared upstream client) and never in the checks'
worker thread. A call that times out or fails makes the verdict `failed`; the caller then
applies the guardrails' policy (refuse under block or mask, go on under log).

What moderation reads: each message's text (string contents and `text` parts, reasoning and
refusals), whatever the role except `system` and `developer` (the application's own
instructions), and string embedding inputs; on answers, each choice's content, reasoning and
refusal. Tool-call arguments are data for programs and are not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from gateway.guardrails.model import GuardrailSpec, Verdict
from gateway.guardrails.moderation_model import (
    ModerationFailed,
    ModerationSpec,
    Rating,
    judge_messages,
    parse_endpoint_answer,
    parse_judge_answer,
    placeholder,
    rate,
)
from providers.http_client import RequestHeaders, Timeouts, endpoint

if TYPE_CHECKING:
    from gateway.config.file import ProviderConfig
    from gateway.upstream.routing import Router
    from providers.pricing import ModelPrice
    from providers.upstream import UpstreamClient
    from providers.usage import Usage
    from telemetry.trace import RequestTrace

logger = logging.getLogger("steerway.guardrails")

SKIPPED_ROLES: Final = frozenset({"system", "developer"})
JUDGE_CONCURRENCY: Final = 8
"""A judge is asked about one text per call; at most this many calls of a request at once."""


class ModerationCall(msgspec.Struct, kw_only=True, gc=False):
    """One call to a moderation model, for the trace: when, what and how it ended."""

    guardrail: str
    source: str
    direction: str
    started: float
    ended: float
    texts: int
    status: str = "ok"  # ok | timeout | error
    error: str | None = None
    spend: Spend | None = None
    """What a judge's chat calls used (an endpoint reports nothing)."""


class JudgeCall(msgspec.Struct, kw_only=True, gc=False):
    """One chat call of a moderation judge, recorded as an interaction (`purpose =
    moderation`) of the request's moderation trace."""

    public_model: str
    provider: str
    provider_model: str
    deployment: str
    started: float
    """Wall-clock seconds."""
    ended: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    status: str = "ok"  # ok | error
    error_type: str | None = None


class Spend(msgspec.Struct, kw_only=True, gc=False):
    """Tokens and cost of a judge's calls for one check, for the trace."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal | None = None
    priced: bool = True
    """False once a call's cost is unknown (the model has no price): `cost_usd` is then a
    lower bound and is not shown."""
    calls: list[JudgeCall] = msgspec.field(default_factory=list)
    """Each call, for the moderation trace (`guardrail_moderation_record`)."""

    def add(self, usage: Usage, price: ModelPrice | None) -> None:
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        cost = None
        if price is not None and usage.prompt_tokens is not None:
            cost = price.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        if cost is None:
            self.priced = False
        else:
            self.cost_usd = (self.cost_usd or Decimal(0)) + cost


class Moderator(Protocol):
    """Scores texts by category (families, 0..1), one mapping per text, in order; a judge adds
    what its calls used to `spend`."""

    source: str
    spends: bool

    async def score(self, texts: Sequence[str], spend: Spend) -> list[dict[str, float]]: ...


class EndpointModerator:
    """An OpenAI-compatible `POST {base_url}/moderations`: all texts in one call."""

    def __init__(self, spec: ModerationSpec, provider: ProviderConfig, upstream: UpstreamClient):
        self.source = spec.source
        self.spends = False
        self._model = spec.model
        self._upstream = upstream
        self._url = endpoint(provider.base_url.rstrip("/") + "/moderations")
        headers = {"Content-Type": "application/json", **provider.headers}
        if provider.api_key is not None:
            headers["Authorization"] = f"Bearer {provider.api_key.reveal()}"
        self._headers = RequestHeaders(headers)
        self._timeout = Timeouts(total=spec.timeout_ms / 1000.0)

    async def score(self, texts: Sequence[str], spend: Spend) -> list[dict[str, float]]:
        body = msgspec.json.encode({"model": self._model, "input": list(texts)})
        try:
            response = await self._upstream.post(self._url, body, self._headers, self._timeout)
            try:
                raw = await response.read()
            finally:
                response.release()
            if response.status >= 400:
                raise ModerationFailed(f"the moderation endpoint answered {response.status}")
        except TimeoutError:
            raise  # a timeout of its own: reported as one by `Moderation.rate`
        except OSError as error:
            raise ModerationFailed(
                f"cannot reach the moderation endpoint ({type(error).__name__})"
            ) from None
        return parse_endpoint_answer(raw, len(texts))


class JudgeModerator:
    """A public chat model of the gateway, asked with a rubric, one text per call."""

    def __init__(self, spec: ModerationSpec, router: Router) -> None:
        self.source = spec.source
        self.spends = True
        self._spec = spec
        self._route = router.resolve(spec.judge_model or "")
        self._timeout = Timeouts(total=spec.timeout_ms / 1000.0)

    async def score(self, texts: Sequence[str], spend: Spend) -> list[dict[str, float]]:
        gate = asyncio.Semaphore(JUDGE_CONCURRENCY)

        async def one(text: str) -> dict[str, float]:
            async with gate:
                return await self._ask(text, spend)

        try:
            async with asyncio.TaskGroup() as group:  # one failure cancels the other calls
                tasks = [group.create_task(one(text)) for text in texts]
        except ExceptionGroup as failures:
            first = failures.exceptions[0]
            if isinstance(first, ModerationFailed | TimeoutError):
                raise first from None
            raise
        return [task.result() for task in tasks]

    async def _ask(self, text: str, spend: Spend) -> dict[str, float]:
        from providers.errors import UpstreamFailure

        target = self._route.targets[0]
        adapter = target.adapter
        payload = {
            "model": target.provider_model,
            "messages": judge_messages(text, self._spec.categories),
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        body = adapter.encode_chat(payload, target.provider_model, stream=False)
        call = JudgeCall(
            public_model=target.public_model,
            provider=target.provider,
            provider_model=target.provider_model,
            deployment=target.id,
            started=time.time(),
        )
        spend.calls.append(call)
        try:
            response = await adapter.send(
                "chat", body, provider_model=target.provider_model, timeouts=self._timeout
            )
            raw = await adapter.read_body(response)
            result = adapter.parse_chat(raw, target.public_model)
        except UpstreamFailure as failure:
            call.status, call.error_type = "error", failure.kind
            if failure.kind == "timeout":
                raise TimeoutError from None
            raise ModerationFailed(f"the moderation judge failed ({failure.kind})") from None
        except BaseException:
            call.status, call.error_type = "error", "cancelled"
            raise
        finally:
            call.ended = time.time()
        call.prompt_tokens = result.usage.prompt_tokens
        call.completion_tokens = result.usage.completion_tokens
        if target.price is not None and result.usage.prompt_tokens is not None:
            call.cost_usd = target.price.cost(
                result.usage.prompt_tokens,
                result.usage.completion_tokens,
                result.usage.cached_tokens,
            )
        spend.add(result.usage, target.price)
        message = result.messages[0] if result.messages else None
        content = message.get("content") if isinstance(message, dict) else None
        return parse_judge_answer(content)


def build_moderator(
    spec: ModerationSpec,
    *,
    providers: Mapping[str, ProviderConfig],
    router: Router,
    upstream: UpstreamClient,
) -> Moderator:
    if spec.judge_model is not None:
        return JudgeModerator(spec, router)
    return EndpointModerator(spec, providers[spec.provider or ""], upstream)


class Moderation:
    """One moderation guardrail ready to run: its spec and its model."""

    __slots__ = ("guardrail", "moderator", "spec")

    def __init__(self, guardrail: GuardrailSpec, moderator: Moderator | None) -> None:
        assert guardrail.moderation is not None
        self.guardrail = guardrail
        self.spec: ModerationSpec = guardrail.moderation
        self.moderator = moderator

    async def rate(
        self, texts: Sequence[str], direction: str, calls: list[ModerationCall]
    ) -> list[Rating]:
        """Each text's rating. Raises ModerationFailed (timeouts included); the call is noted
        in `calls` either way (no texts: no call)."""
        if not texts:
            return []
        started = time.perf_counter()
        call = ModerationCall(
            guardrail=self.guardrail.name,
            source=self.spec.source,
            direction=direction,
            started=started,
            ended=started,
            texts=len(texts),
        )
        calls.append(call)
        try:
            if self.moderator is None:
                raise ModerationFailed("the moderation model is not connected")
            try:
                if self.moderator.spends:
                    call.spend = Spend()
                async with asyncio.timeout(self.spec.timeout_ms / 1000.0):
                    scores = await self.moderator.score(texts, call.spend or Spend())
            except TimeoutError:
                call.status = "timeout"
                raise ModerationFailed(
                    f"the moderation model did not answer within {self.spec.timeout_ms} ms"
                ) from None
        except ModerationFailed as failure:
            if call.status == "ok":
                call.status = "error"
            call.error = str(failure)
            logger.warning(
                "moderation guardrail %r failed on the %s: %s",
                self.guardrail.name,
                direction,
                failure,
            )
            raise
        finally:
            call.ended = time.perf_counter()
        threshold = self.guardrail.threshold
        return [rate(each, self.spec, threshold) for each in scores]

    def verdict(
        self,
        direction: str,
        ratings: Sequence[Rating],
        started: float,
        failure: ModerationFailed | None = None,
    ) -> Verdict:
        spec = self.guardrail
        latency_us = (time.perf_counter() - started) * 1e6
        if failure is not None:
            return Verdict(
                guardrail=spec.name,
                kind=spec.kind,
                direction=direction,
                action=spec.action,
                triggered=False,
                score=0.0,
                latency_us=latency_us,
                reason=f"the check failed ({failure})",
                failed=True,
            )
        counts: dict[str, int] = {}
        best: dict[str, float] = {}
        for rating in ratings:
            for category in rating.flagged:
                counts[category] = counts.get(category, 0) + 1
            for category, score in rating.scores.items():
                best[category] = max(best.get(category, 0.0), score)
        top = max(best.values(), default=0.0)
        shown = [category for category in self.spec.categories if category in counts]
        reason = ", ".join(f"{category} {best[category]:g}" for category in shown)
        return Verdict(
            guardrail=spec.name,
            kind=spec.kind,
            direction=direction,
            action=spec.action,
            triggered=bool(counts),
            score=round(top, 4),
            entities=counts,
            latency_us=latency_us,
            reason=f"scored by {self.spec.source}: {reason}" if reason else "",
        )


# --- the request ---------------------------------------------------------------------------


async def moderate_input(
    moderation: Moderation,
    slots: Sequence[tuple[Any, Any, str]],
    calls: list[ModerationCall],
) -> Verdict:
    """Rate every text of the request in one go; under `mask`, replace each flagged text by a
    placeholder that names its categories."""
    started = time.perf_counter()
    places = [(container, key) for container, key, role in slots if role not in SKIPPED_ROLES]
    texts = [container[key] for container, key in places]
    try:
        ratings = await moderation.rate(texts, "input", calls)
    except ModerationFailed as failure:
        return moderation.verdict("input", [], started, failure)
    if moderation.guardrail.action == "mask":
        for (container, key), rating in zip(places, ratings, strict=True):
            if rating.flagged:
                container[key] = placeholder(rating.flagged)
    return moderation.verdict("input", ratings, started)


# --- a whole answer ---------------------------------------------------------------------------

ANSWER_TEXTS: Final = ("content", "reasoning_content", "refusal")


async def moderate_answer(
    moderation: Moderation, choices: list[Any], calls: list[ModerationCall]
) -> Verdict:
    """Rate each text of each choice; a flagged choice ends with `finish_reason:
    content_filter`, its content null (block) or the placeholder (mask). `log` changes
    nothing. A failure under block or mask filters every choice (fail closed)."""
    started = time.perf_counter()
    places: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        places.extend(
            (choice, message, field)
            for field in ANSWER_TEXTS
            if isinstance(message.get(field), str) and message[field]
        )
    action = moderation.guardrail.action
    try:
        ratings = await moderation.rate([m[f] for _, m, f in places], "output", calls)
    except ModerationFailed as failure:
        if action != "log":
            for choice in choices:
                filter_choice(choice, None)
        return moderation.verdict("output", [], started, failure)
    if action != "log":
        flagged: dict[int, list[str]] = {}
        for (choice, _, _), rating in zip(places, ratings, strict=True):
            if rating.flagged:
                kept = flagged.setdefault(id(choice), [])
                kept.extend(c for c in rating.flagged if c not in kept)
        for choice in choices:
            categories = flagged.get(id(choice))
            if categories:
                filter_choice(choice, placeholder(categories) if action == "mask" else None)
    return moderation.verdict("output", ratings, started)


def filter_choice(choice: Any, content: str | None) -> None:
    """End a choice as filtered: `content` replaces its text (None under block), its tool
    calls and reasoning go."""
    if not isinstance(choice, dict):
        return
    message = choice.get("message")
    if isinstance(message, dict):
        message["content"] = content
        for field in ("tool_calls", "function_call", "reasoning_content", "refusal"):
            message.pop(field, None)
    choice["finish_reason"] = "content_filter"


def record_calls(trace: RequestTrace, calls: Sequence[ModerationCall]) -> None:
    """Each call to a moderation model as a span `guardrails.moderation`: its latency, its
    model and how it ended (never the texts)."""
    for call in calls:
        attributes: dict[str, Any] = {
            "guardrail": call.guardrail,
            "moderation.model": call.source,
            "direction": call.direction,
            "texts": call.texts,
            "outcome": call.status,
        }
        if call.error is not None:
            attributes["error"] = call.error
        spend = call.spend
        if spend is not None:
            attributes["gen_ai.usage.input_tokens"] = spend.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = spend.completion_tokens
            if spend.priced and spend.cost_usd is not None:
                attributes["cost_usd"] = str(spend.cost_usd)
        trace.add_span(
            "guardrails.moderation",
            "guardrails",
            call.started,
            call.ended,
            status="ok" if call.status == "ok" else "error",
            attributes=attributes,
        )
