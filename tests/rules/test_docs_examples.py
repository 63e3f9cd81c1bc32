"""docs/rules.md stays true: every ```yaml block compiles, the documented error messages are the
ones the compiler gives, and the examples do what their text says."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.compiler import RuleError, compile_rules
from rules.context import RequestContext
from rules.engine import Evaluation, RuleSet

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Wednesday 2026-11-18 14:30 UTC and Saturday 2026-11-21 12:00 UTC.
WEDNESDAY = 1_795_012_200.0
SATURDAY = 1_795_262_400.0


def fenced(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == language]


def yaml_blocks() -> list[str]:
    return fenced("yaml")


def routes(rules: list[dict[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every route target a rule set names, as {model, provider?}."""
    for rule in rules:
        route = (rule.get("then") or {}).get("route")
        if isinstance(route, str):
            yield {"model": route}
        elif isinstance(route, Mapping) and "targets" in route:
            for target in route["targets"]:
                yield {"model": target} if isinstance(target, str) else target
        elif isinstance(route, Mapping):
            yield route


def named_models(rules: list[dict[str, Any]]) -> set[str]:
    models = {t["model"] for t in routes(rules) if "provider" not in t}
    for rule in rules:
        fallbacks = (rule.get("then") or {}).get("fallbacks") or []
        models.update([fallbacks] if isinstance(fallbacks, str) else fallbacks)
    return models


def named_providers(rules: list[dict[str, Any]]) -> set[str]:
    return {t["provider"] for t in routes(rules) if "provider" in t}


def compile_block(block: str) -> RuleSet:
    config = yaml.safe_load(block)
    assert isinstance(config, dict) and list(config) == ["rules"], "a block is a `rules:` section"
    documents = config["rules"]
    return compile_rules(
        documents, models=named_models(documents), providers=named_providers(documents)
    )


def example(rule_id: str) -> RuleSet:
    for block in yaml_blocks():
        if re.search(rf"^\s*- id: {re.escape(rule_id)}$", block, re.MULTILINE):
            return compile_block(block)
    raise AssertionError(f"no example defines {rule_id}")


def context(**fields: Any) -> RequestContext:
    fields.setdefault("model", "gpt-4o")
    fields.setdefault("now", WEDNESDAY)
    return RequestContext(**fields)


def test_the_reference_has_its_examples() -> None:
    blocks = yaml_blocks()
    assert len(blocks) >= 10
    for rule_id in (
        "legal-team-to-claude",
        "short-prompts-to-mini",
        "ab-assistant-sonnet-vs-gemini",
        "no-large-models-on-trial",
        "budget-80-cap-output",
        "json-mode-deterministic",
        "weekend-internal-tools",
    ):
        example(rule_id)


def first_id(block: str) -> str:
    found = re.search(r"- id: ([a-z0-9._-]+)", block)
    return found.group(1) if found else "no-id"


@pytest.mark.parametrize("block", yaml_blocks(), ids=first_id)
def test_every_yaml_block_compiles(block: str) -> None:
    ruleset = compile_block(block)
    assert len(ruleset) == len(yaml.safe_load(block)["rules"]) > 0


def test_documented_error_messages_are_the_compilers() -> None:
    console = next(b for b in fenced("console") if "check-config" in b and "rules[" in b)
    documented = [line.strip() for line in console.splitlines() if line.startswith("  rules[")]
    bad = next(b for b in fenced("text") if b.startswith("rules:"))
    with pytest.raises(RuleError) as raised:
        compile_rules(
            yaml.safe_load(bad)["rules"], models=["gpt-4o", "gpt-4o-mini"], providers=["openai"]
        )
    assert raised.value.problems == documented
    assert f"{len(documented)} problems" in console


def routed(evaluation: Evaluation) -> str | None:
    return evaluation.route.name if evaluation.route is not None else None


def test_short_prompts_go_to_mini_and_production_is_tagged_first() -> None:
    rules = example("short-prompts-to-mini")
    short = rules.evaluate(
        context(estimated_input_tokens=30, metadata={"env": "prod"}, max_tokens=1000)
    )
    assert short.rule_ids == ["tag-production", "short-prompts-to-mini"]
    assert (routed(short), short.tags, short.cap) == ("gpt-4o-mini", ["prod"], {"max_tokens": 256})
    critical = rules.evaluate(context(estimated_input_tokens=30, tags=["quality-critical"]))
    assert routed(critical) is None


def test_ab_split_is_sticky_per_end_user() -> None:
    rules = example("ab-assistant-sonnet-vs-gemini")
    sides = {
        user: {
            routed(
                rules.evaluate(
                    context(model="claude-sonnet", user=user, metadata={"app": "assistant"})
                )
            )
            for _ in range(5)
        }
        for user in (f"user-{n}" for n in range(200))
    }
    assert all(len(seen) == 1 for seen in sides.values())
    share = sum(seen == {"gemini-flash"} for seen in sides.values()) / len(sides)
    assert 0.03 < share < 0.2


def test_trial_workspaces_are_refused_the_large_models() -> None:
    rules = example("no-large-models-on-trial")
    denied = rules.evaluate(context(workspace="0190f3a2c5d97c61a0e0d1b2c3d4e5f6"))
    assert denied.deny is not None and denied.deny.status == 403
    assert denied.deny.code == "model_not_allowed"
    assert (
        rules.evaluate(
            context(workspace="0190f3a2c5d97c61a0e0d1b2c3d4e5f6", model="gpt-4o-mini")
        ).deny
        is None
    )
    assert rules.evaluate(context(workspace="another")).deny is None


def test_budget_rules_do_nothing_until_budgets_report_a_percentage() -> None:
    rules = example("budget-80-cap-output")
    assert rules.evaluate(context()).matched == []
    at_85 = rules.evaluate(context(budget={"key_percent": 85.0}))
    assert (at_85.rule_ids, at_85.cap) == (["budget-80-cap-output"], {"max_tokens": 512})
    at_97 = rules.evaluate(context(budget={"key_percent": 97.0}))
    assert (at_97.rule_ids, routed(at_97)) == (["budget-95-to-mini"], "gpt-4o-mini")


def test_json_mode_forces_temperature_and_lets_later_rules_run() -> None:
    rules = example("json-mode-deterministic")
    for ctx in (context(tags=["json"]), context(has_response_format=True)):
        assert rules.evaluate(ctx).set == {"temperature": 0, "seed": 42}
    assert rules.evaluate(context()).set == {}
    assert rules.rules[0].keep_going


def test_weekend_routing_follows_berlin_time() -> None:
    rules = example("weekend-internal-tools")
    tagged = {"tags": ["internal-tools"]}
    assert routed(rules.evaluate(context(now=SATURDAY, **tagged))) == "gpt-4o-mini"
    assert routed(rules.evaluate(context(now=WEDNESDAY, **tagged))) is None
    assert routed(rules.evaluate(context(now=SATURDAY))) is None
    # Friday 17:30 UTC is 18:30 in Berlin (CET, UTC+1): already the weekend there.
    friday_evening = SATURDAY - 18 * 3600 - 1800
    assert routed(rules.evaluate(context(now=friday_evening, **tagged))) == "gpt-4o-mini"
    # Monday 04:30 UTC is 05:30 in Berlin: still the weekend; 05:30 UTC is not.
    monday_early = SATURDAY + 40 * 3600 + 1800
    assert routed(rules.evaluate(context(now=monday_early, **tagged))) == "gpt-4o-mini"
    assert routed(rules.evaluate(context(now=monday_early + 3600, **tagged))) is None


def test_route_by_tag_touches_only_tagged_requests() -> None:
    rules = example("legal-team-to-claude")
    legal = rules.evaluate(context(tags=["legal", "eu"]))
    assert (routed(legal), legal.fallbacks) == ("claude-sonnet", ("gpt-4o",))
    assert rules.evaluate(context(tags=["marketing"])).matched == []
