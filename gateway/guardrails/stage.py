"""The guardrails stage: the request's guardrails picked and the input ones run (block, or mask
in place); and the output side the upstream and cache stages call on an answer or a stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from gateway.exchange import Exchange, Receive, Send
from gateway.guardrails import engine as guards
from gateway.guardrails.engine import Guardrails
from gateway.guardrails.model import CheckContext, Verdict
from gateway.guardrails.moderation import ModerationCall
from gateway.guardrails.moderation import record_calls as record_moderation_calls
from gateway.guardrails.moderation_record import moderation_bundle
from gateway.guardrails.moderation_stream import ModerationStream
from gateway.guardrails.stream import StreamGuard
from telemetry.records import TraceBundle
from telemetry.schema import DEFAULT_WORKSPACE_ID

logger = logging.getLogger("steerway.proxy")


class GuardrailStage:
    """Runs the input guardrails; with no guardrails configured it is left out of the pipeline,
    and its output side does nothing (no request has a `guard_context` then)."""

    __slots__ = ("guardrails", "record")

    def __init__(
        self, guardrails: Guardrails | None, record: Callable[[TraceBundle], bool]
    ) -> None:
        self.guardrails = guardrails
        self.record = record

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        """Pick the request's guardrails and run the input ones: block, or mask in place."""
        guardrails = self.guardrails
        if guardrails is None:
            return False
        payload = exchange.payload
        key = exchange.key
        steering = exchange.steering
        selection = guardrails.select(
            workspace=key.workspace_limits.guardrails if key is not None else (),
            key=key.guardrails if key is not None else (),
            rule=steering.guardrails if steering is not None else None,
        )
        if selection is None:
            return False
        exchange.guarded = selection
        response_format = payload.get("response_format")
        context = CheckContext(
            direction="input",
            model=exchange.requested_model,
            metadata=exchange.metadata,
            tags=tuple(exchange.tags),
            workspace_id=key.workspace_id if key is not None else None,
            key_name=key.name if key is not None else None,
            estimated_input_tokens=int(exchange.features.get("estimated_input_tokens", 0)),
            response_format=response_format if isinstance(response_format, dict) else None,
        )
        exchange.guard_context = context
        if not selection.input:
            return False
        started = time.perf_counter()
        outcome = await guardrails.check_input(selection, payload, exchange.call, context)
        exchange.guard_input = outcome
        self.note_verdicts(exchange, outcome.verdicts, started, "input")
        self.moderation_calls(exchange, outcome.moderation_calls)
        if outcome.blocked is not None:
            raise guards.blocked_error(outcome.blocked)
        return False

    def moderation_calls(self, exchange: Exchange, calls: list[ModerationCall]) -> None:
        """Each moderation call as a span of the request; a judge's chat calls also as their
        own trace (`source = moderation`), handed to the recorder (one enqueue)."""
        if not calls:
            return
        record_moderation_calls(exchange.trace, calls)
        key = exchange.key
        bundle = moderation_bundle(
            calls,
            workspace_id=key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID,
            request_trace_id=exchange.trace.trace_id,
        )
        if bundle is not None:
            try:
                self.record(bundle)
            except Exception:
                logger.exception("could not hand a moderation trace to the recorder")

    def note_verdicts(
        self,
        exchange: Exchange,
        verdicts: list[Verdict],
        started: float,
        direction: str,
    ) -> None:
        exchange.guard_verdicts.extend(verdicts)
        key = exchange.key
        guards.record(exchange.trace, verdicts, key.key_id if key is not None else None)
        exchange.trace.add_span(
            f"guardrails.{direction}",
            "gateway",
            started,
            time.perf_counter(),
            attributes={"guardrails": [v.guardrail for v in verdicts]},
        )

    async def guard_answer(self, exchange: Exchange, body: bytes) -> bytes:
        """Run the output guardrails (and unmasking) over a whole chat answer."""
        guardrails = self.guardrails
        context = exchange.guard_context
        if guardrails is None or context is None:
            return body
        started = time.perf_counter()
        calls: list[ModerationCall] = []
        body, verdicts = await guardrails.check_output(
            exchange.guarded,
            exchange.guard_input,
            body,
            msgspec.structs.replace(context, direction="output"),
            calls,
        )
        if verdicts:
            self.note_verdicts(exchange, verdicts, started, "output")
        self.moderation_calls(exchange, calls)
        return body

    def stream_guard(self, exchange: Exchange) -> StreamGuard | None:
        guardrails = self.guardrails
        context = exchange.guard_context
        selection = exchange.guarded
        if guardrails is None or context is None or selection is None:
            return None
        outcome = exchange.guard_input
        unmasker = outcome.unmasker if outcome is not None else None
        if not selection.local_output and unmasker is None:
            return None
        masking = [g for g in selection.local_output if g.spec.action == "mask"]
        guard = StreamGuard(
            selection.local_output,
            msgspec.structs.replace(context, direction="output"),
            unmasker=unmasker,
            masker=guardrails.masker(masking[0].spec.mask_style) if masking else None,
            window_chars=guardrails.window_chars,
            hold_chars=guardrails.hold_chars,
        )
        exchange.guard_pending = tuple(g.name for g in selection.output)
        return guard

    def moderation_stream(self, exchange: Exchange) -> ModerationStream | None:
        guardrails = self.guardrails
        selection = exchange.guarded
        if guardrails is None or selection is None or not selection.remote_output:
            return None
        exchange.guard_pending = tuple(g.name for g in selection.output)
        return ModerationStream(selection.remote_output, window_chars=guardrails.window_chars)

    async def moderated_stream(
        self, exchange: Exchange, moderation: ModerationStream | None, ended: float
    ) -> None:
        """The moderation verdicts of a stream, once the client has all of it: `log` ones
        call their model only now, so the response is not held open for them."""
        if moderation is None:
            return
        moderated = await moderation.verdicts()
        self.note_verdicts(exchange, moderated, ended, "output")
        self.moderation_calls(exchange, moderation.calls)
