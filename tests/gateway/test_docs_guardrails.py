"""Every YAML and Python example in docs/guardrails.md is a working config or check."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import yaml

from gateway.config.file import parse_config
from gateway.guardrails.model import CheckContext, CheckResult

DOC = (Path(__file__).resolve().parents[2] / "docs" / "guardrails.md").read_text()
BLOCKS = re.compile(r"```(yaml|python)\n(.*?)```", re.S)
EXAMPLE_CALLABLE = "mycompany.checks:no_shouting"


def _blocks(language: str) -> list[str]:
    return [body for kind, body in BLOCKS.findall(DOC) if kind == language]


def _as_config(document: dict[str, Any]) -> dict[str, Any]:
    """A whole config, a `guardrails:` section, `rules:`, or loose definitions by name."""
    if "guardrails" in document or "rules" in document:
        return document
    return {"guardrails": {"definitions": document}}


def test_every_yaml_example_is_a_valid_config() -> None:
    blocks = _blocks("yaml")
    assert len(blocks) >= 8
    for block in blocks:
        text = block.replace(EXAMPLE_CALLABLE, "tests.gateway.custom_checks:no_shouting")
        document = yaml.safe_load(text)
        config = _as_config(document)
        if "rules" in config and "guardrails" not in config:
            config["guardrails"] = {"definitions": {"pii": {"kind": "pii"}}}
        parse_config(config)  # raises ConfigError with every problem


def test_the_custom_check_example_runs() -> None:
    (source,) = _blocks("python")
    module = types.ModuleType("example_check")
    exec(compile(source, "docs/guardrails.md", "exec"), module.__dict__)
    check = module.no_shouting
    context = CheckContext(direction="input")
    assert check("all quiet here", context) is None
    result = check("THIS IS VERY LOUD TODAY", context)
    assert isinstance(result, CheckResult) and result.overall == 1.0
    assert "LOUD" not in result.reason
