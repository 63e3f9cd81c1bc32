"""The `evaluators` and `evaluation` sections of the config file."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.config.file import ConfigError, parse_config

BASE: dict[str, Any] = {
    "providers": {"mock": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
    "models": {"judge": [{"provider": "mock", "model": "mock-gpt"}]},
}


def problems(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config({**BASE, **sections})
    return error.value.problems


def test_an_evaluator_and_the_pool_settings_are_read() -> None:
    config = parse_config(
        {
            **BASE,
            "evaluation": {"concurrency": 4, "lease": 60, "run_in_serve": False},
            "evaluators": [
                {
                    "name": "answers",
                    "condition": {"model": "judge"},
                    "sampling_rate": 0.1,
                    "judge": {"model": "judge", "timeout_s": 20},
                    "criteria": ["accuracy", {"name": "brevity", "rubric": "Short."}],
                    "daily_cap_usd": 2.5,
                }
            ],
        }
    )
    settings = config.evaluation
    assert (settings.concurrency, settings.lease, settings.run_in_serve) == (4, 60.0, False)
    [evaluator] = settings.evaluators
    assert (evaluator.workspace, evaluator.name, evaluator.enabled) == ("default", "answers", True)
    definition = evaluator.definition
    assert definition.daily_cap_usd == Decimal("2.5")
    assert definition.judge.timeout_s == 20
    assert [c.name for c in definition.criteria] == ["accuracy", "brevity"]
    assert definition.criteria[0].built_in and not definition.criteria[1].built_in


def test_defaults_without_the_sections() -> None:
    settings = parse_config(BASE).evaluation
    assert settings.evaluators == ()
    assert (settings.concurrency, settings.run_in_serve) == (2, True)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "a", "judge": "nope"}, "evaluators[0].judge.model: no public model 'nope'"),
        ({"name": "a", "judge": "judge", "sampling_rate": 2}, "evaluators[0].sampling_rate"),
        ({"name": "a", "judge": "judge", "criteria": ["wit"]}, "evaluators[0].criteria[0].rubric"),
        (
            {"name": "a", "judge": "judge", "condition": {"modle": "x"}},
            "evaluators[0].condition",
        ),
        ({"name": "a", "judge": "judge", "daily_cap_usd": -1}, "evaluators[0].daily_cap_usd"),
        ({"name": "a", "judge": "judge", "max_attempts": 0}, "evaluators[0].max_attempts"),
        ({"judge": "judge"}, "evaluators[0]: missing required field 'name'"),
        ({"name": "a", "judge": "judge", "colour": 1}, "evaluators[0]: unknown field 'colour'"),
    ],
)
def test_a_bad_evaluator_is_named(entry: dict[str, Any], expected: str) -> None:
    found = problems(evaluators=[entry])
    assert any(p.startswith(expected) for p in found), found


def test_two_evaluators_of_one_name_in_a_workspace() -> None:
    entry = {"name": "a", "judge": "judge"}
    assert any("a second evaluator named 'a'" in p for p in problems(evaluators=[entry, entry]))


def test_bad_pool_settings() -> None:
    found = problems(evaluation={"concurrency": 0, "lease": -1, "speed": 3})
    assert any(p.startswith("evaluation.concurrency") for p in found)
    assert any(p.startswith("evaluation.lease") for p in found)
    assert any("unknown field 'speed'" in p for p in found)
