"""Guardrails on the request path: which apply, running them over the input and the answer, and
what they leave in the trace.

The guardrails of a request are the config's `default` ones, its workspace's, its key's and those
a steering rule names, each once. Input checks run after admission and before the cache key is
computed, over every text of the request (message contents and text parts, embedding inputs);
`mask` rewrites those texts in place, so the provider, the cache key and the stored prompt all see
the masked text. Output checks run over the answer before the client sees it (streams: see
`gateway.guardrails.stream`); `unmask` then puts masked values back.

A request without guardrails costs one empty-tuple check. Inputs longer than `offload_chars` are
checked in a worker thread so the event loop keeps serving other requests meanwhile. Moderation
guardrails call a model, so they run as coroutines after the local checks, over the texts those
left (`gateway.guardrails.moderation`); on an answer they run first, on the provider's own text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway.errors import GatewayError
from gateway.guardrails.arguments import ToolArguments, tool_arguments
from gateway.guardrails.checks import TEXT_CHECK_KINDS, Check, build_check
from gateway.guardrails.config import GuardrailsConfig
from gateway.guardrails.model import (
    REMOTE_KINDS,
    CheckContext,
    CheckResult,
    Finding,
    GuardrailSpec,
    Verdict,
    count_kinds,
)
from gateway.guardrails.moderation import (
    Moderation,
    ModerationCall,
    build_moderator,
    moderate_answer,
    moderate_input,
)
from telemetry import metrics
from telemetry.trace import RequestTrace

if TYPE_CHECKING:
    from gateway.config.file import ProviderConfig
    from gateway.upstream.routing import Router
    from providers.upstream import UpstreamClient

logger = logging.getLogger("steerway.guardrails")

HEADER: Final = "x-steerway-guardrails"
CONTENT_FILTER: Final = "content_filter"

_verdicts_total = metrics.Labelled(metrics.guardrail_verdicts_total)
_check_seconds = metrics.Labelled(metrics.guardrail_check_seconds)

Slot = tuple[MutableMapping[str, Any] | MutableSequence[Any], Any, str]
"""Where one text of a request lives: its container, the key or index in it, and the role of
its message (`user` for embedding inputs)."""
DEVELOPER_ROLES: Final = frozenset({"system", "developer"})
"""Whose messages are the application's own instructions: not read for prompt injection."""


SLICE_CHARS: Final = 8192
SLICE_OVERLAP: Final = 512
SLICED_KINDS: Final = frozenset({"pii", "deny_list"})
"""Span-finding checks whose findings do not depend on the rest of the text."""


def sliced(check: Check) -> Check:
    """`check` run over a long text one overlapping slice at a time.

    A regular-expression pass holds the interpreter lock for as long as it runs: over a 200 KB
    prompt, one pass can keep the event loop's thread waiting for tens of milliseconds even though
    the check runs in a worker thread. Slices keep each pass short. Findings that two slices both
    see are reported once; a value longer than the overlap could be cut by a slice edge.
    """

    def run(text: str, context: CheckContext) -> CheckResult:
        if len(text) <= SLICE_CHARS:
            return check(text, context)
        found: list[Finding] = []
        step = SLICE_CHARS - SLICE_OVERLAP
        for start in range(0, len(text) - SLICE_OVERLAP, step):
            result = check(text[start : start + SLICE_CHARS], context)
            found.extend(
                Finding(f.kind, f.start + start, f.end + start, f.score) for f in result.findings
            )
        return CheckResult(findings=_without_overlaps(found))

    return run


def _without_overlaps(findings: list[Finding]) -> tuple[Finding, ...]:
    """The longest of overlapping findings (the higher score on a tie), in text order."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, f.start - f.end, -f.score)):
        last = kept[-1] if kept else None
        if last is None or finding.start >= last.end:
            kept.append(finding)
        elif (finding.end - finding.start, finding.score) > (last.end - last.start, last.score):
            kept[-1] = finding
    return tuple(kept)


MODEL_TEXTS: Final = ("reasoning_content", "refusal")
"""Text fields of an answer's message besides `content`: the reasoning some OpenAI-compatible
servers return, and a refusal. The text checks read them; `json_schema` reads `content` only."""


class Guardrail:
    """A declared guardrail with its check built."""

    __slots__ = ("check", "moderation", "reads_text", "remote", "spec")

    def __init__(self, spec: GuardrailSpec, check: Check) -> None:
        self.spec = spec
        self.check = sliced(check) if spec.kind in SLICED_KINDS else check
        self.reads_text = spec.kind in TEXT_CHECK_KINDS
        self.remote = spec.kind in REMOTE_KINDS
        """The check calls a model (moderation): it runs on the event loop, after the others."""
        self.moderation = Moderation(spec, None) if spec.moderation is not None else None

    @property
    def name(self) -> str:
        return self.spec.name


class Selection:
    """The guardrails in force for one request, by direction."""

    __slots__ = ("input", "local_input", "local_output", "output", "remote_input", "remote_output")

    def __init__(self, guardrails: Sequence[Guardrail]) -> None:
        ordered = sorted(guardrails, key=_order)
        self.input = tuple(g for g in ordered if g.spec.applies_to("input"))
        self.output = tuple(g for g in ordered if g.spec.applies_to("output"))
        self.local_input = tuple(g for g in self.input if not g.remote)
        self.local_output = tuple(g for g in self.output if not g.remote)
        self.remote_input = tuple(g for g in self.input if g.remote)
        self.remote_output = tuple(g for g in self.output if g.remote)


class InputOutcome:
    """What the input checks decided. `maskers` hold the values masked, for `unmask`."""

    __slots__ = ("blocked", "maskers", "moderation_calls", "unmask", "verdicts")

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []
        self.blocked: Verdict | None = None
        self.maskers: dict[str, Any] = {}
        self.unmask = False
        self.moderation_calls: list[ModerationCall] = []

    @property
    def unmasker(self) -> Any | None:
        """The masker whose hash tokens the answer may carry, when unmasking is asked for."""
        return self.maskers.get("hash") if self.unmask else None


class Guardrails:
    """The config's guardrails, built once at start."""

    def __init__(self, config: GuardrailsConfig) -> None:
        self.by_name = {
            name: Guardrail(spec, build_check(spec)) for name, spec in config.definitions.items()
        }
        self.default = config.default
        self.offload_chars = config.offload_chars
        self.window_chars = config.stream_window_chars
        self.hold_chars = config.stream_hold_chars
        secret = config.mask_secret
        self.secret = secret.reveal().encode() if secret is not None else os.urandom(32)
        self._executor: ThreadPoolExecutor | None = None

    def connect_moderation(
        self,
        *,
        providers: Mapping[str, ProviderConfig],
        router: Router,
        upstream: UpstreamClient,
    ) -> None:
        """Give the moderation guardrails their models, once the providers and the router are
        built. Until then (or for a model that cannot be reached) their checks fail."""
        for guardrail in self.by_name.values():
            moderation = guardrail.moderation
            if moderation is not None:
                moderation.moderator = build_moderator(
                    moderation.spec, providers=providers, router=router, upstream=upstream
                )

    def select(
        self,
        *,
        workspace: Iterable[str] = (),
        key: Iterable[str] = (),
        rule: Iterable[str] | None = None,
    ) -> Selection | None:
        """The guardrails for one request, or None when there are none (the common case)."""
        names = [*self.default, *workspace, *key, *(rule or ())]
        if not names:
            return None
        chosen: dict[str, Guardrail] = {}
        for name in names:
            if name in chosen:
                continue
            guardrail = self.by_name.get(name)
            if guardrail is None:
                raise GatewayError(
                    503,
                    f"The guardrail {name!r} applied to this request is not defined in the "
                    "gateway's config; the request was not sent.",
                    type="server_error",
                    code="guardrail_unavailable",
                )
            chosen[name] = guardrail
        return Selection(list(chosen.values()))

    # --- input ---------------------------------------------------------------------------

    async def check_input(
        self,
        selection: Selection,
        payload: dict[str, Any],
        operation: str,
        context: CheckContext,
    ) -> InputOutcome:
        texts = request_texts(payload, operation)
        slots = texts.slots
        size = sum(len(container[key]) for container, key, _ in slots)
        if size > self.offload_chars:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                self._pool(), self._run_input, selection.local_input, slots, context
            )
        else:
            outcome = self._run_input(selection.local_input, slots, context)
        if selection.remote_input and outcome.blocked is None:
            await self._moderate_input(selection.remote_input, texts, outcome)
        texts.commit()
        return outcome

    async def _moderate_input(
        self, guardrails: Sequence[Guardrail], texts: RequestTexts, outcome: InputOutcome
    ) -> None:
        """After the local checks (so the moderation model reads masked text): block, mask or
        log; a failure refuses the request unless the action is log."""
        arguments = {(id(c), k) for a in texts.arguments for c, k in a.places}
        slots = [slot for slot in texts.slots if (id(slot[0]), slot[1]) not in arguments]
        for guardrail in guardrails:
            assert guardrail.moderation is not None
            verdict = await moderate_input(guardrail.moderation, slots, outcome.moderation_calls)
            outcome.verdicts.append(verdict)
            action = guardrail.spec.action
            if (verdict.failed and action != "log") or (verdict.triggered and action == "block"):
                outcome.blocked = verdict
                return

    def _run_input(
        self, guardrails: Sequence[Guardrail], slots: list[Slot], context: CheckContext
    ) -> InputOutcome:
        outcome = InputOutcome()
        for guardrail in guardrails:
            spec = guardrail.spec
            started = time.perf_counter()
            try:
                if guardrail.reads_text:
                    verdict = self._check_texts(guardrail, slots, context, outcome)
                else:
                    scan = _Scan(spec)
                    scan.add(guardrail.check("", context))
                    verdict = scan.verdict("input")
            except Exception as error:
                verdict = _failed(guardrail, "input", error)
            verdict.latency_us = (time.perf_counter() - started) * 1e6
            outcome.verdicts.append(verdict)
            if verdict.failed and spec.action != "log":
                outcome.blocked = verdict
                break
            if verdict.triggered and spec.action == "block":
                outcome.blocked = verdict
                break
        return outcome

    def _check_texts(
        self,
        guardrail: Guardrail,
        slots: list[Slot],
        context: CheckContext,
        outcome: InputOutcome,
    ) -> Verdict:
        spec = guardrail.spec
        scan = _Scan(spec)
        skip = DEVELOPER_ROLES if spec.kind == "prompt_injection" else frozenset()
        for container, key, role in slots:
            if role in skip:
                continue
            text = container[key]
            acted_on = scan.add(guardrail.check(text, context))
            if spec.action == "mask" and acted_on:
                container[key] = self._masker(outcome, spec).mask(text, acted_on)
        verdict = scan.verdict("input")
        if spec.unmask and verdict.triggered:
            outcome.unmask = True
        return verdict

    def masker(self, style: str) -> Any:
        """A new masker (its tokens and what they stand for live as long as one request)."""
        from gateway.guardrails.masking import Masker

        return Masker(style, self.secret)

    def _masker(self, outcome: InputOutcome, spec: GuardrailSpec) -> Any:
        masker = outcome.maskers.get(spec.mask_style)
        if masker is None:
            masker = outcome.maskers[spec.mask_style] = self.masker(spec.mask_style)
        return masker

    # --- output (a whole answer) -----------------------------------------------------------

    async def check_output(
        self,
        selection: Selection | None,
        outcome: InputOutcome | None,
        body: bytes,
        context: CheckContext,
        calls: list[ModerationCall] | None = None,
    ) -> tuple[bytes, list[Verdict]]:
        """`check_answer`, in a worker thread when the answer is longer than `offload_chars`
        (in bytes), as long inputs are; moderation first, on the provider's own answer (the
        calls it makes go to `calls`)."""
        moderated: list[Verdict] = []
        if selection is not None and selection.remote_output:
            body, moderated = await self._moderate_answer(
                selection.remote_output, body, [] if calls is None else calls
            )
        if len(body) <= self.offload_chars:
            body, verdicts = self.check_answer(selection, outcome, body, context)
            return body, moderated + verdicts
        loop = asyncio.get_running_loop()
        body, verdicts = await loop.run_in_executor(
            self._pool(), self.check_answer, selection, outcome, body, context
        )
        return body, moderated + verdicts

    async def _moderate_answer(
        self, guardrails: Sequence[Guardrail], body: bytes, calls: list[ModerationCall]
    ) -> tuple[bytes, list[Verdict]]:
        try:
            document = msgspec.json.decode(body)
            choices = document["choices"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return body, []
        if not isinstance(choices, list):
            return body, []
        verdicts = []
        for guardrail in guardrails:
            assert guardrail.moderation is not None
            verdicts.append(await moderate_answer(guardrail.moderation, choices, calls))
        if all(v.action == "log" or not (v.triggered or v.failed) for v in verdicts):
            return body, verdicts  # nothing changed: the provider's bytes go on as they were
        return msgspec.json.encode(document), verdicts

    def check_answer(
        self,
        selection: Selection | None,
        outcome: InputOutcome | None,
        body: bytes,
        context: CheckContext,
    ) -> tuple[bytes, list[Verdict]]:
        """The answer the client gets and the output verdicts: violating choices end with a
        `content_filter` finish (block) or have their findings masked; unmasking comes last."""
        guardrails = selection.local_output if selection is not None else ()
        unmasker = outcome.unmasker if outcome is not None else None
        if not guardrails and unmasker is None:
            return body, []
        try:
            document = msgspec.json.decode(body)
            choices = document["choices"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return body, []
        messages = [
            choice["message"]
            for choice in choices
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        ]
        verdicts = []
        for guardrail in guardrails:
            started = time.perf_counter()
            try:
                verdict = self._check_answer(guardrail, choices, context)
            except Exception as error:
                verdict = _failed(guardrail, "output", error)
                if guardrail.spec.action != "log":
                    for choice in choices:
                        _filter_choice(choice)
            verdict.latency_us = (time.perf_counter() - started) * 1e6
            verdicts.append(verdict)
        if unmasker is not None:
            for message in messages:
                for field in ("content", *MODEL_TEXTS):
                    text = message.get(field)
                    if isinstance(text, str):
                        message[field] = unmasker.unmask(text)
                for arguments in tool_arguments(message):
                    arguments.rewrite(unmasker.unmask)
        return msgspec.json.encode(document), verdicts

    def _check_answer(
        self, guardrail: Guardrail, choices: list[Any], context: CheckContext
    ) -> Verdict:
        spec = guardrail.spec
        scan = _Scan(spec)
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            places: list[tuple[Any, Any]] = []
            if isinstance(message.get("content"), str):
                places.append((message, "content"))
            calls: list[ToolArguments] = []
            if guardrail.reads_text:  # json_schema reads `content` only
                places += [(message, f) for f in MODEL_TEXTS if isinstance(message.get(f), str)]
                calls = tool_arguments(message)
                places += [place for arguments in calls for place in arguments.places]
            blocked = False
            for container, key in places:
                text = container[key]
                acted_on = scan.add(guardrail.check(text, context))
                if acted_on is None:
                    continue
                if spec.action == "block":
                    blocked = True
                elif spec.action == "mask" and acted_on:
                    container[key] = self.masker(spec.mask_style).mask(text, acted_on)
            if blocked:
                _filter_choice(choice)
                continue
            for arguments in calls:
                arguments.commit()
        return scan.verdict("output")

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="guardrails")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class _Scan:
    """One guardrail's results over the texts of a request (or the choices of an answer),
    folded into one verdict."""

    __slots__ = ("best", "findings", "reasons", "spec")

    def __init__(self, spec: GuardrailSpec) -> None:
        self.spec = spec
        self.best = 0.0
        self.findings: list[Finding] = []
        self.reasons: list[str] = []

    def add(self, result: CheckResult) -> list[Finding] | None:
        """Note one text's result; the findings to act on when it triggers, else None."""
        score = result.overall
        self.best = max(self.best, score)
        if result.reason and result.reason not in self.reasons:
            self.reasons.append(result.reason)
        threshold = self.spec.threshold
        kept = [f for f in result.findings if f.score >= threshold]
        triggers = _triggers(score, threshold)
        if triggers and not kept:
            kept = list(result.findings)  # weak findings that add up to a violation together
        self.findings.extend(kept)
        return kept if triggers else None

    def verdict(self, direction: str) -> Verdict:
        spec = self.spec
        return Verdict(
            guardrail=spec.name,
            kind=spec.kind,
            direction=direction,
            action=spec.action,
            triggered=_triggers(self.best, spec.threshold),
            score=round(self.best, 4),
            entities=count_kinds(self.findings),
            reason="; ".join(self.reasons),
        )


# --- the request's texts ---------------------------------------------------------------------


class RequestTexts:
    """Every text a request sends, as slots the checks read and masks rewrite in place, and the
    tool-call arguments to put back together once they have."""

    __slots__ = ("arguments", "slots")

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.arguments: list[ToolArguments] = []

    def commit(self) -> None:
        for arguments in self.arguments:
            arguments.commit()


def request_texts(payload: dict[str, Any], operation: str) -> RequestTexts:
    """For chat: each message's content (a string, or its text parts), the reasoning and
    refusal of earlier answers, and the strings in the arguments of the tool calls they made;
    for embeddings: the input strings (token arrays carry no text to check)."""
    texts = RequestTexts()
    slots = texts.slots
    if operation == "embeddings":
        value = payload.get("input")
        if isinstance(value, str):
            slots.append((payload, "input", "user"))
        elif isinstance(value, list):
            slots.extend(
                (value, index, "user") for index, item in enumerate(value) if isinstance(item, str)
            )
        return texts
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return texts
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        role = message.get("role")
        role = role if isinstance(role, str) else "user"
        if isinstance(content, str):
            slots.append((message, "content", role))
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    slots.append((part, "text", role))
        slots.extend(
            (message, field, role) for field in MODEL_TEXTS if isinstance(message.get(field), str)
        )
        for arguments in tool_arguments(message):
            texts.arguments.append(arguments)
            slots.extend((container, key, role) for container, key in arguments.places)
    return texts


# --- verdicts --------------------------------------------------------------------------------


def record(trace: RequestTrace, verdicts: Iterable[Verdict], api_key_id: str | None) -> None:
    """Each verdict as a `guardrail` decision, each finding verdict as a violation row, and
    both in the metrics."""
    for verdict in verdicts:
        spec_action = verdict.action
        action = "error" if verdict.failed else (spec_action if verdict.triggered else "pass")
        _verdicts_total(verdict.guardrail, action).inc()
        _check_seconds(verdict.guardrail, verdict.direction).observe(verdict.latency_us / 1e6)
        trace.add_decision(
            "guardrail",
            "guardrails",
            input={
                "guardrail": verdict.guardrail,
                "kind": verdict.kind,
                "direction": verdict.direction,
                "action": spec_action,
            },
            output={
                "outcome": verdict.outcome,
                "score": verdict.score,
                "entities": verdict.entities,
            },
            reasoning=_reasoning(verdict),
            evaluation_us=verdict.latency_us,
        )
        if verdict.triggered or verdict.failed:
            trace.add_violation(
                guardrail=verdict.guardrail,
                kind=verdict.kind,
                direction=verdict.direction,
                action=spec_action,
                entities=verdict.entities,
                score=verdict.score,
                latency_us=verdict.latency_us,
                api_key_id=api_key_id,
            )


def header_value(verdicts: Iterable[Verdict], pending_output: Iterable[str] = ()) -> str:
    """`pii=masked, injection=pass, pii@output=pass`; output checks still to run on a stream
    read `name@output=streaming`."""
    parts = [
        f"{v.guardrail}{'@output' if v.direction == 'output' else ''}={v.outcome}" for v in verdicts
    ]
    parts.extend(f"{name}@output=streaming" for name in pending_output)
    return ", ".join(parts)


def blocked_error(verdict: Verdict) -> GatewayError:
    if verdict.failed:
        return GatewayError(
            503,
            f"The guardrail {verdict.guardrail!r} could not check this request, so it was not "
            "sent.",
            type="server_error",
            code="guardrail_unavailable",
        )
    found = _found(verdict) or "a violation"
    return GatewayError(
        400,
        f"The request was blocked by the guardrail {verdict.guardrail!r} ({verdict.kind}): "
        f"found {found}.",
        type="invalid_request_error",
        code="guardrail_violation",
        param="messages",
    )


def _failed(guardrail: Guardrail, direction: str, error: Exception) -> Verdict:
    logger.warning(
        "guardrail %r failed on the %s: %s", guardrail.name, direction, type(error).__name__
    )
    spec = guardrail.spec
    return Verdict(
        guardrail=spec.name,
        kind=spec.kind,
        direction=direction,
        action=spec.action,
        triggered=False,
        score=0.0,
        reason=f"the check failed ({type(error).__name__})",
        failed=True,
    )


def _triggers(score: float, threshold: float) -> bool:
    return score > 0 and score >= threshold


def _filter_choice(choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    message = choice.get("message")
    if isinstance(message, dict):
        message["content"] = None
        message.pop("tool_calls", None)
        message.pop("function_call", None)
    choice["finish_reason"] = CONTENT_FILTER


def _found(verdict: Verdict) -> str:
    return ", ".join(f"{kind} ({count})" for kind, count in sorted(verdict.entities.items()))


def _reasoning(verdict: Verdict) -> str:
    if verdict.failed:
        return verdict.reason
    where = "the request" if verdict.direction == "input" else "the answer"
    if not verdict.triggered:
        return f"nothing found in {where} (score {verdict.score:g})"
    found = _found(verdict)
    done = {"block": "blocked", "mask": "masked", "log": "logged and let through"}[verdict.action]
    detail = f"; {verdict.reason}" if verdict.reason else ""
    return f"found {found or 'a violation'} in {where} (score {verdict.score:g}): {done}{detail}"


def _order(guardrail: Guardrail) -> int:
    """Cheap request checks first, then blocking text checks, then logging ones, then the ones
    that mask: a request about to be refused is not masked first, and a logging check still
    sees what masking would hide."""
    if not guardrail.reads_text:
        return 0
    return {"block": 1, "log": 2}.get(guardrail.spec.action, 3)
