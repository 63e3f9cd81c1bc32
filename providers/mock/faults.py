"""Deciding whether a request gets its injected failure: `mock.fail_first` and `mock.fail_models`.

The gateway sends the same body on every retry and to every deployment it falls back to, so the
body alone cannot say "fail twice, then succeed" or "fail on deployment A only". These gates add
what the body lacks: a per-scenario count of the requests seen so far, kept in the mock process
(each worker process keeps its own), and the model the request is for.
"""

from __future__ import annotations

import msgspec

from providers.mock.settings import Behaviour

DEFAULT_STATUS = 503
"""The status a gated request fails with when it names no kind of failure."""
MAX_SCENARIOS = 10_000


class FaultGates:
    """Per-scenario request counts, and the decision each request's failure depends on."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def reset(self) -> None:
        self._seen.clear()

    def counts(self) -> dict[str, int]:
        return dict(self._seen)

    def resolve(self, behaviour: Behaviour, model: str) -> Behaviour:
        """The behaviour this request really gets: its failure kept, or taken away by the gates.

        `fail_models` is checked first, so requests for other models neither fail nor use up
        the scenario's `fail_first` budget.
        """
        if behaviour.fail_first is None and behaviour.fail_models is None:
            return behaviour
        if behaviour.fail_models is not None:
            status = behaviour.fail_models.get(model)
            if status is None:
                return _succeeding(behaviour)
            behaviour = msgspec.structs.replace(behaviour, error=status)
        scenario, fail_first = behaviour.scenario, behaviour.fail_first
        if scenario is not None and fail_first is not None and self._count(scenario) > fail_first:
            return _succeeding(behaviour)
        if not behaviour.fails:
            behaviour = msgspec.structs.replace(behaviour, error=DEFAULT_STATUS)
        return behaviour

    def _count(self, scenario: str) -> int:
        seen = self._seen.pop(scenario, 0) + 1
        if len(self._seen) >= MAX_SCENARIOS:
            del self._seen[next(iter(self._seen))]
        self._seen[scenario] = seen
        return seen


def _succeeding(behaviour: Behaviour) -> Behaviour:
    return msgspec.structs.replace(
        behaviour, error=None, hang=False, malformed=False, drop_after_chunks=None
    )
