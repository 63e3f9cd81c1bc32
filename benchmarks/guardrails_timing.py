"""Timing the guardrail checks in process, one call at a time, as the gateway calls them.

Each case is one check over one text: `PiiScanner.scan` (pattern mode, the default entities),
`InjectionDetector.scan`, `DenyList.scan`, and the whole input stage (`Guardrails.check_input`
with a `pii` mask guardrail over a chat payload, built from the config section the gateway
reads). The stage masks the payload in place, so each call gets a fresh copy, made before the
clock starts. A case whose check the gateway does not have (yet) is reported as unavailable
rather than timed.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec

from benchmarks.guardrails_workload import (
    CLEAN_PROMPT,
    DENSE_PROMPT,
    INJECTION_MODULE,
    INJECTION_PROMPT,
    LONG_PROMPT,
    PII,
    PII_PROMPT,
    deny_words,
    guardrails_section,
)
from benchmarks.stats import percentile

SUPPORT_SYSTEM: Final = "You are a helpful support assistant for an online clothing shop."
STAGE_PAYLOAD: Final = {
    "model": "bench-model",
    "messages": [
        {"role": "system", "content": SUPPORT_SYSTEM},
        {"role": "user", "content": PII_PROMPT},
    ],
    "max_tokens": 256,
}
"""The input stage's request: a system message and PII_PROMPT (about 1.1 KB of text)."""

T = TypeVar("T")

PACED_PAUSE_S: Final = 0.003
"""About the pace of the gateway's serial loads. A call that follows a few milliseconds of other
work (or of an idle vCPU) finds colder caches than one in a tight loop and takes longer; in the
gateway every check is such a call."""
PACED_CASE: Final = "pii: 1 KB, 2 PII values, 3 ms apart"


@dataclass(frozen=True)
class Case:
    """One timed check: `prepare` makes the argument of one call, `call` is what the clock sees."""

    label: str
    what: str
    iterations: int
    call: Callable[[Any], object] | None = None
    prepare: Callable[[], Any] = field(default=lambda: None)
    unavailable: str | None = None
    pause_s: float = 0.0
    """A pause after each call, outside the clock (see PACED_PAUSE_S)."""


@dataclass
class Timings:
    """Nanoseconds per call."""

    calls_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        if not self.calls_ns:
            raise ValueError("no timed call")
        micros = [value / 1000 for value in self.calls_ns]
        return {
            "p50": percentile(micros, 50),
            "p99": percentile(micros, 99),
            "calls": float(len(micros)),
        }


def warmup_calls(iterations: int) -> int:
    """Untimed calls before a case: a tenth of its timed ones, at least five."""
    return max(5, iterations // 10)


def time_calls(
    call: Callable[[Any], object],
    prepare: Callable[[], Any],
    *,
    iterations: int,
    warmup: int,
    pause_s: float = 0.0,
) -> Timings:
    """`warmup` untimed then `iterations` timed calls, each on a fresh `prepare()` and followed
    by a sleep of `pause_s` when given."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    for _ in range(warmup):
        call(prepare())
    timings = Timings()
    clock = time.perf_counter_ns
    for _ in range(iterations):
        argument = prepare()
        started = clock()
        call(argument)
        timings.calls_ns.append(clock() - started)
        if pause_s > 0:
            time.sleep(pause_s)
    return timings


def time_case(case: Case, scale: float = 1.0) -> Timings:
    """Time `case` with its iterations times `scale` (at least one)."""
    if case.call is None:
        raise ValueError(f"{case.label}: {case.unavailable or 'not available'}")
    iterations = max(1, round(case.iterations * scale))
    return time_calls(
        case.call,
        case.prepare,
        iterations=iterations,
        warmup=warmup_calls(iterations),
        pause_s=case.pause_s,
    )


def kib(text: str) -> str:
    return f"{len(text.encode()) / 1024:.1f} KB"


def build_cases() -> list[Case]:
    """Every case, in report order; building them loads presidio (about 1.5 s)."""
    from gateway.guardrails.content import DenyList
    from gateway.guardrails.pii import PiiScanner

    scan = PiiScanner().scan
    words = deny_words()
    cases = [
        text_case("pii: 1 KB, 2 PII values", "PiiScanner.scan", PII_PROMPT, 1000, scan),
        text_case(PACED_CASE, "PiiScanner.scan", PII_PROMPT, 1000, scan, pause_s=PACED_PAUSE_S),
        text_case("pii: 1 KB, no PII", "PiiScanner.scan", CLEAN_PROMPT, 1000, scan),
        text_case("pii: 1 KB, PII-dense", "PiiScanner.scan", DENSE_PROMPT, 200, scan),
        text_case("pii: 10 KB, 20 PII values", "PiiScanner.scan", LONG_PROMPT, 200, scan),
    ]
    detector, missing = _injection_detector()
    for label, text in (
        ("injection: 1 KB clean", CLEAN_PROMPT),
        ("injection: 1 KB attack", INJECTION_PROMPT),
    ):
        if detector is None:
            what = f"InjectionDetector.scan, {kib(text)}"
            cases.append(Case(label, what, 2000, unavailable=missing))
        else:
            cases.append(text_case(label, "InjectionDetector.scan", text, 2000, detector.scan))
    deny = DenyList(words, ())
    label = f"deny list: {len(words)} words, 1 KB"
    cases.append(text_case(label, "DenyList.scan", PII_PROMPT, 5000, deny.scan))
    cases.append(input_stage_case())
    return cases


def text_case(
    label: str,
    method: str,
    text: str,
    iterations: int,
    scan: Callable[[str], object],
    *,
    pause_s: float = 0.0,
) -> Case:
    """A check called on the same text every time."""
    what = f"{method}, {kib(text)}"
    return Case(label, what, iterations, scan, lambda: text, pause_s=pause_s)


def _injection_detector() -> tuple[Any | None, str | None]:
    try:
        module = importlib.import_module(INJECTION_MODULE)
    except ImportError as error:
        return None, f"{INJECTION_MODULE} not importable ({type(error).__name__})"
    return module.InjectionDetector(), None


def input_stage_case() -> Case:
    """`Guardrails.check_input` with the gateway's `pii` mask guardrail, checked once first: a
    stage that does not mask (its check failed) is reported, not timed."""
    from gateway.config.file import parse_config
    from gateway.guardrails.engine import Guardrails
    from gateway.guardrails.model import CheckContext

    label = "input stage: pii mask, chat 1 KB"
    encoded = msgspec.json.encode(STAGE_PAYLOAD)
    what = f"Guardrails.check_input, chat payload {len(encoded) / 1024:.1f} KB"
    guardrails = Guardrails(
        parse_config({"guardrails": guardrails_section(with_injection=False)}).guardrails
    )
    selection = guardrails.select(key=(PII,))
    assert selection is not None
    context = CheckContext(direction="input", model="bench-model", estimated_input_tokens=300)

    def fresh() -> dict[str, Any]:
        payload: dict[str, Any] = msgspec.json.decode(encoded)
        return payload

    def call(payload: dict[str, Any]) -> object:
        return drive(guardrails.check_input(selection, payload, "chat", context))

    payload = fresh()
    outcome = call(payload)
    verdicts = getattr(outcome, "verdicts", [])
    problem = stage_problem([v.outcome for v in verdicts], [v.reason for v in verdicts])
    if problem is None and PII_PROMPT in str(payload):
        problem = "the prompt was not masked"
    if problem is not None:
        return Case(label, what, 1000, unavailable=problem)
    return Case(label, what, 1000, call, fresh)


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that finishes without suspending, as `check_input` does for inputs under
    `offload_chars`: what an `await` of it costs in the gateway, without an event loop's turn."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    coroutine.close()
    raise RuntimeError("the coroutine suspended; only inputs under offload_chars run inline")


def stage_problem(outcomes: Sequence[str], reasons: Sequence[str]) -> str | None:
    """Why one run of the stage shows it did not mask as configured."""
    if outcomes == ["masked"]:
        return None
    detail = f" ({'; '.join(r for r in reasons if r)})" if any(reasons) else ""
    return f"the pii guardrail answered {', '.join(outcomes) or 'nothing'}{detail}"
