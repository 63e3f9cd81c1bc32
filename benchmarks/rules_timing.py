"""Timing `RuleSet.evaluate` in process, one request at a time, as the proxy calls it.

Each timed request builds its context (`routing_features` + `RequestContext.from_features`) and
evaluates it; both spans are taken from one clock reading each, so "evaluate alone" and
"context + evaluate" come from the same requests. A fresh context per request matters: a context
caches the prompt text and local times on first use, and reusing one would hide that cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.rules_workload import SampleRequest, build_context
from benchmarks.stats import percentile
from rules.engine import RuleSet


@dataclass
class Timings:
    """Per request, in nanoseconds: context + evaluate, and evaluate alone."""

    total_ns: list[int] = field(default_factory=list)
    evaluate_ns: list[int] = field(default_factory=list)
    evaluated: int = 0
    """Rules tested, summed over requests."""
    matched: int = 0
    """Rules matched, summed over requests."""

    def summary(self) -> dict[str, float]:
        """p50/p99 in µs and the mean rules evaluated and matched per request."""
        count = len(self.total_ns)
        if count == 0 or len(self.evaluate_ns) != count:
            raise ValueError("no timed request")
        total_us = [value / 1000 for value in self.total_ns]
        evaluate_us = [value / 1000 for value in self.evaluate_ns]
        return {
            "p50": percentile(total_us, 50),
            "p99": percentile(total_us, 99),
            "eval_p50": percentile(evaluate_us, 50),
            "eval_p99": percentile(evaluate_us, 99),
            "evaluated": self.evaluated / count,
            "matched": self.matched / count,
        }


def time_rule_set(
    ruleset: RuleSet, samples: Sequence[SampleRequest], *, requests: int, warmup: int
) -> Timings:
    """Run `warmup` untimed then `requests` timed requests, cycling through `samples`."""
    if not samples:
        raise ValueError("no sample request")
    sized = [(sample, sample.body_size) for sample in samples]
    count = len(sized)
    for index in range(warmup):
        sample, size = sized[index % count]
        ruleset.evaluate(build_context(sample, size))
    timings = Timings()
    total = timings.total_ns
    alone = timings.evaluate_ns
    clock = time.perf_counter_ns
    evaluated = matched = 0
    for index in range(requests):
        sample, size = sized[index % count]
        started = clock()
        context = build_context(sample, size)
        built = clock()
        evaluation = ruleset.evaluate(context)
        ended = clock()
        total.append(ended - started)
        alone.append(ended - built)
        evaluated += evaluation.evaluated
        matched += len(evaluation.matched)
    timings.evaluated = evaluated
    timings.matched = matched
    return timings
