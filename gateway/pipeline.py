"""The request path as one list of stages, in the order a request meets them:

    entry          authenticate, read and validate the body    gateway/entry/stage.py
    steering       rules: deny, change parameters, route        gateway/steering/stage.py
    limits         allowed models, rate limits, budgets         gateway/limits/stage.py
    guardrails     the input guardrails (block or mask)         gateway/guardrails/stage.py
    cache          answer from the cache, or mark to store      gateway/cache/stage.py
    upstream       provider call: retries, fallbacks, output    gateway/upstream/stage.py
                   guardrails, the answer streamed or whole
    recording      the trace to the recorder, the metrics       gateway/recording.py
                   (for every request, refused ones too: the proxy runs it as the request ends)

Every stage reads and writes the request's `Exchange`. A stage answers the request (and so ends
the list) by returning True, or refuses it by raising the `GatewayError` the client gets. A stage
that holds something while the request runs (admission's rate-limit hold and budget reservation)
also has `settle`, run when the list ends however it ended. A stage with nothing to do for this
gateway's configuration (no guardrails, no cache, no limits) is left out of the list, so it costs
a request nothing. Inbound APIs (`gateway/inbound/`) run the same list: their body is turned into
the chat request by the entry stage.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateway.cache.stage import CacheStage
from gateway.entry.stage import EntryStage
from gateway.exchange import Exchange, Receive, Send
from gateway.guardrails.stage import GuardrailStage
from gateway.inbound.api import InboundSend
from gateway.limits.stage import LimitsStage
from gateway.steering.stage import SteeringStage
from gateway.upstream.stage import UpstreamStage


class Stage(Protocol):
    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        """Do this stage's part; True when the request is answered and the stages after it do
        not run."""
        ...


@runtime_checkable
class Settles(Protocol):
    async def settle(self, exchange: Exchange) -> None:
        """Give back what the stage holds for the request, once the list has ended."""
        ...


class Pipeline:
    """The stages a request goes through, built once per worker."""

    __slots__ = ("settling", "stages")

    def __init__(self, stages: tuple[Stage, ...]) -> None:
        self.stages = stages
        self.settling = tuple(stage for stage in stages if isinstance(stage, Settles))

    async def run(
        self,
        exchange: Exchange,
        receive: Receive,
        send: Send,
        call: str,
        inbound: InboundSend | None = None,
    ) -> None:
        """Run a `chat` or `embeddings` call (an inbound API's request is a chat call)."""
        exchange.call = call
        exchange.inbound = inbound
        try:
            for stage in self.stages:
                if await stage.run(exchange, receive, send):
                    return
        finally:
            for holder in self.settling:
                await holder.settle(exchange)


def request_path(
    *,
    entry: EntryStage,
    steering: SteeringStage,
    limits: LimitsStage | None,
    guardrails: GuardrailStage,
    cache: CacheStage,
    upstream: UpstreamStage,
) -> Pipeline:
    """The pipeline in the order above, without the stages this configuration does not use."""
    stages: list[Stage] = [entry, steering]
    if limits is not None:
        stages.append(limits)
    if guardrails.guardrails is not None:
        stages.append(guardrails)
    if cache.cache is not None:
        stages.append(cache)
    stages.append(upstream)
    return Pipeline(tuple(stages))
