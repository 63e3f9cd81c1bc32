"""A written summary of an error group, by a model the gateway serves (`evaluation.
error_summary_model`), asked for on demand and kept in memory for a while.

The model is called through the judge's caller (`telemetry.evaluation.judge.JudgeCaller`), so
the call is priced and recorded as a trace of its own (`source = evaluation`), left out of the
users' usage. It is given what the group says about itself: provider, error type, the message's
template, counts, first and last time and up to three example messages as stored (the recorder
scrubs credentials from error messages before they are stored), never a prompt or an answer.

Summaries are kept per workspace scope and fingerprint for `TTL_S` in this process only: the
Insights page and the report show a kept summary and never call the model themselves.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

from telemetry.evaluation.judge import JudgeCaller, JudgeCallFailed, JudgeRequest
from telemetry.insights.errors import ErrorGroup, ErrorSummariser, with_summary

TTL_S: Final = 6 * 3600.0
MAX_KEPT: Final = 2000
MAX_SUMMARY: Final = 600
TIMEOUT_S: Final = 30.0
EVERY_WORKSPACE: Final = "*"

INSTRUCTION: Final = (
    "You help an operator of an LLM gateway read its provider errors. You are given one group "
    "of failed provider calls that share a provider, an error type and a message template "
    "(numbers, ids, quoted text and URLs replaced by placeholders), with counts and example "
    "messages. In two or three plain sentences say what the error most likely means and what "
    "the operator could check or change. Do not repeat the counts. Answer as JSON: "
    '{"summary": "..."}.'
)
SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"summary": {"type": "string"}},
    "required": ["summary"],
}


class SummaryFailed(Exception):
    """The summary could not be written; the message is safe to show (no provider text)."""


class ErrorSummaryCache:
    """Summaries by (workspace scope, fingerprint), each kept `ttl_s` seconds, at most
    `max_kept` of them (the oldest written goes first)."""

    def __init__(
        self,
        *,
        ttl_s: float = TTL_S,
        max_kept: int = MAX_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_kept = max_kept
        self._clock = clock
        self._kept: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, workspace_id: str | None, fingerprint: str) -> str | None:
        key = (workspace_id or EVERY_WORKSPACE, fingerprint)
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            written, summary = found
            if self._clock() - written > self._ttl_s:
                del self._kept[key]
                return None
            return summary

    def put(self, workspace_id: str | None, fingerprint: str, summary: str) -> None:
        key = (workspace_id or EVERY_WORKSPACE, fingerprint)
        with self._lock:
            self._kept.pop(key, None)
            self._kept[key] = (self._clock(), summary)
            while len(self._kept) > self._max_kept:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def summariser(self, workspace_id: str | None) -> ErrorSummariser:
        """Fills each group's `summary` from what is kept; never calls a model."""

        async def fill(groups: Sequence[ErrorGroup]) -> Sequence[ErrorGroup]:
            filled = []
            for group in groups:
                summary = self.get(workspace_id, group.fingerprint)
                filled.append(group if summary is None else with_summary(group, summary))
            return filled

        return fill


SUMMARIES: Final = ErrorSummaryCache()
"""The process's summaries, read by the Insights page, its API and the report."""


def summary_request(group: ErrorGroup, *, workspace_id: str, model: str) -> JudgeRequest:
    examples = "\n".join(f"- {message}" for message in group.example_messages) or "- (none)"
    facts = (
        f"Provider: {group.provider}\n"
        f"Error type: {group.error_type or '(none)'}\n"
        f"Message template: {group.template or '(no message)'}\n"
        f"Failed calls: {group.count}, first {group.first_seen.isoformat()}, "
        f"last {group.last_seen.isoformat()}\n"
        f"Example messages:\n{examples}"
    )
    return JudgeRequest(
        workspace_id=workspace_id,
        model=model,
        messages=[
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": facts},
        ],
        schema=SCHEMA,
        temperature=0.0,
        timeout_s=TIMEOUT_S,
    )


def read_summary(text: str | None) -> str:
    """The summary in the model's JSON answer, cut to `MAX_SUMMARY` characters."""
    try:
        document = msgspec.json.decode(text or "")
    except msgspec.DecodeError:
        raise SummaryFailed("the model's answer was not JSON") from None
    summary = document.get("summary") if isinstance(document, dict) else None
    if not isinstance(summary, str) or not summary.strip():
        raise SummaryFailed("the model's answer had no summary")
    summary = " ".join(summary.split())
    return summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…"


async def write_summary(
    caller: JudgeCaller,
    group: ErrorGroup,
    *,
    model: str,
    workspace_id: str | None,
    record_in: str,
    cache: ErrorSummaryCache = SUMMARIES,
) -> str:
    """Asks `model` for the group's summary and keeps it for `workspace_id`'s scope; the call
    is recorded in workspace `record_in`. `SummaryFailed` when no summary came back."""
    try:
        answer = await caller.judge(summary_request(group, workspace_id=record_in, model=model))
    except JudgeCallFailed as error:
        raise SummaryFailed(f"the call failed ({error})") from None
    if answer.refused:
        raise SummaryFailed("the model declined to answer")
    summary = read_summary(answer.text)
    cache.put(workspace_id, group.fingerprint, summary)
    return summary
