"""The steering rules of the demo history, evaluated by the real rules engine.

Requests alike in everything the rules read (model, tags, metadata: `demo_cast.RULE_FIELDS`)
get the same evaluation, so each distinct one is evaluated once and its decisions' inputs and
outputs are shared.
"""

from __future__ import annotations

from typing import Any

from rules.context import RequestContext
from rules.engine import Evaluation, RuleSet


class RuleOutcome:
    """A rules evaluation and the decisions it records, shared by every request alike in what
    the rules read."""

    __slots__ = ("effects", "evaluation", "matches", "summary_input")

    def __init__(self, evaluation: Evaluation, model: str) -> None:
        self.evaluation = evaluation
        matched = evaluation.matched
        self.effects = evaluation.effects()
        self.summary_input = {
            "requested_model": model,
            "rules_evaluated": evaluation.evaluated,
            "rules_matched": len(matched),
            "rules_not_matched": evaluation.evaluated - len(matched),
        }
        self.matches = [
            (
                m.rule_id,
                m.name,
                {"matched_on": m.evidence, "source": m.source},
                m.actions,
                "matched: " + "; ".join(m.evidence),
            )
            for m in matched
        ]

    def reasoning(self) -> str:
        ids = [m.rule_id for m in self.evaluation.matched]
        if ids:
            return (
                f"{len(ids)} of {self.evaluation.evaluated} evaluated rules matched: "
                + ", ".join(ids)
            )
        return f"none of {self.evaluation.evaluated} rules matched"


class DemoRules:
    __slots__ = ("_outcomes", "_rules")

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._outcomes: dict[tuple[Any, ...], RuleOutcome] = {}

    def outcome(self, model: str, tags: list[str], metadata: dict[str, Any]) -> RuleOutcome:
        memo = (model, tuple(tags), tuple(sorted(metadata.items())))
        found = self._outcomes.get(memo)
        if found is None:
            context = RequestContext.from_features({"model": model}, tags=tags, metadata=metadata)
            found = self._outcomes[memo] = RuleOutcome(self._rules.evaluate(context), model)
        return found
