"""The `evaluators` and `evaluation` sections of the config: evaluators kept in the file
(written to the `evaluators` table with `origin = config` at start) and the judge workers'
settings. See docs/quality.md.

```yaml
evaluation:
  run_in_serve: true     # false: `steerway serve` leaves judging to `steerway worker`
  concurrency: 2         # judge calls at once per process
  poll_interval: 1.0     # seconds between looks at the queue when it is empty
  lease: 120             # seconds a claimed row is held before another worker may take it
  backoff: 5             # seconds before the first retry of a failed attempt (doubling)
  refresh_interval: 5    # seconds between the recorder's reads of the evaluator list
  error_summary_model: null  # a public model that writes Insights' error summaries on demand

evaluators:
  - name: answers
    workspace: default            # a slug; default when left out
    enabled: true
    condition: {model: gpt-4o}    # the rules' condition language; none: every request
    sampling_rate: 0.05
    judge: judge                  # a public model name, or {model, temperature, timeout_s}
    criteria: [accuracy, helpfulness, {name: brevity, rubric: "Short and complete."}]
    daily_cap_usd: 2.50
    max_attempts: 3
```
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final, Protocol

import msgspec

from rules.recorded import condition_problem
from telemetry.alerts.config_items import DEFAULT_WORKSPACE_SLUG
from telemetry.evaluation.definition import FIELDS, DefinitionError, check_name, parse_definition
from telemetry.evaluation.store import FileEvaluator

SECTION_FIELDS: Final = (
    "run_in_serve",
    "concurrency",
    "poll_interval",
    "lease",
    "backoff",
    "refresh_interval",
    "error_summary_model",
)
EVALUATOR_FIELDS: Final = ("name", "workspace", "enabled", *FIELDS)
MAX_CONCURRENCY: Final = 64


class EvaluationConfig(msgspec.Struct, frozen=True, kw_only=True):
    run_in_serve: bool = True
    concurrency: int = 2
    poll_interval: float = 1.0
    lease: float = 120.0
    backoff: float = 5.0
    refresh_interval: float = 5.0
    error_summary_model: str | None = None
    """A public model asked for an error group's summary on the Insights page; None: off."""
    evaluators: tuple[FileEvaluator, ...] = ()


class Reader(Protocol):
    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def positive_number(self, value: Any, path: str, *, default: float) -> float: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def string(self, value: Any, path: str, *, default: str = "") -> str: ...

    def report(self, path: str, message: str) -> None: ...


def parse_evaluation(
    section: Any, evaluators: Any, models: Collection[str], reader: Reader
) -> EvaluationConfig:
    fields = reader.fields(section, "evaluation", SECTION_FIELDS)
    defaults = EvaluationConfig()
    run_in_serve = fields.get("run_in_serve", defaults.run_in_serve)
    if not isinstance(run_in_serve, bool):
        reader.report("evaluation.run_in_serve", "expected true or false")
        run_in_serve = defaults.run_in_serve
    concurrency = reader.positive_integer(
        fields.get("concurrency"), "evaluation.concurrency", default=defaults.concurrency
    )
    if concurrency > MAX_CONCURRENCY:
        reader.report("evaluation.concurrency", f"at most {MAX_CONCURRENCY}")
        concurrency = defaults.concurrency

    def seconds(name: str, default: float) -> float:
        return reader.positive_number(fields.get(name), f"evaluation.{name}", default=default)

    summary_model = fields.get("error_summary_model")
    if summary_model is not None and (
        not isinstance(summary_model, str) or summary_model not in models
    ):
        reader.report(
            "evaluation.error_summary_model", "must name a public model of the config's `models`"
        )
        summary_model = None
    return EvaluationConfig(
        run_in_serve=run_in_serve,
        error_summary_model=summary_model,
        concurrency=concurrency,
        poll_interval=seconds("poll_interval", defaults.poll_interval),
        lease=seconds("lease", defaults.lease),
        backoff=seconds("backoff", defaults.backoff),
        refresh_interval=seconds("refresh_interval", defaults.refresh_interval),
        evaluators=_parse_evaluators(evaluators, models, reader),
    )


def _parse_evaluators(
    value: Any, models: Collection[str], reader: Reader
) -> tuple[FileEvaluator, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.report("evaluators", "expected a list of evaluators")
        return ()
    found: list[FileEvaluator] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(value):
        path = f"evaluators[{index}]"
        fields = reader.fields(item, path, EVALUATOR_FIELDS, required=("name", "judge"))
        if not fields:
            continue
        workspace = reader.string(
            fields.get("workspace"), f"{path}.workspace", default=DEFAULT_WORKSPACE_SLUG
        )
        enabled = fields.get("enabled", True)
        if not isinstance(enabled, bool):
            reader.report(f"{path}.enabled", "expected true or false")
            enabled = True
        try:
            name = check_name(fields.get("name"))
            definition = parse_definition(
                {k: v for k, v in fields.items() if k in FIELDS},
                models=models,
                check_condition=condition_problem,
            )
        except DefinitionError as error:
            reader.report(f"{path}.{error.field}", error.reason)
            continue
        if (workspace, name) in seen:
            reader.report(f"{path}.name", f"a second evaluator named '{name}' in '{workspace}'")
            continue
        seen.add((workspace, name))
        found.append(FileEvaluator(path, workspace, name, enabled, definition))
    return tuple(found)
