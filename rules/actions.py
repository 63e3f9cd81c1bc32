"""Compiling a rule's `then`: what the gateway does with a request the rule matched.

route: gpt-4o                                   a public model
route: {provider: openai, model: gpt-4o-mini}   one provider's model, bypassing the model list
route: {targets: [{model: a, weight: 90}, {model: b, weight: 10}], sticky: true}
fallbacks: [gpt-4o-mini]                        replaces the model's configured fallbacks
set: {temperature: 0}                           force request parameters
cap: {max_tokens: 512}                          lower numeric parameters (set them when absent)
deny: {status: 403, message: "...", code: ...}  refuse the request
tag: [premium]                                  add tags to the trace
cache: {mode: on, ttl: 300}                     cache policy for the request
guardrails: [pii]                               guardrails to apply
budget: premium                                 the budget bucket to charge
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from typing import Any, Final

import msgspec

from providers.usage import COUNTED_PARAMETERS, counted
from rules.conditions import Problems

ACTIONS: Final = (
    "route",
    "fallbacks",
    "set",
    "cap",
    "deny",
    "tag",
    "cache",
    "guardrails",
    "budget",
)
# Parameters a rule may not set: the model goes through `route`, the rest would change what the
# client asked for beyond recognition or break the protocol with it.
PROTECTED_PARAMETERS: Final = frozenset({"model", "messages", "input", "stream"})
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_PARAMETER: Final = re.compile(r"[a-z_][a-z0-9_]{0,63}")
MAX_TARGETS: Final = 20


class RouteTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where a request goes: a public model, or `provider` + `model` directly."""

    model: str
    provider: str | None = None
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.model if self.provider is None else f"{self.provider}/{self.model}"


DENY_MESSAGE: Final = "This request is not allowed by the gateway's rules."
DENY_CODE: Final = "request_denied"


class Deny(msgspec.Struct, frozen=True, kw_only=True):
    status: int = 403
    message: str = DENY_MESSAGE
    code: str = DENY_CODE


class CachePolicy(msgspec.Struct, frozen=True, kw_only=True):
    mode: str = "on"  # on | off
    ttl: int | None = None


class Actions(msgspec.Struct, frozen=True, kw_only=True):
    route: tuple[RouteTarget, ...] = ()
    sticky: bool = False
    fallbacks: tuple[str, ...] | None = None
    set: Mapping[str, Any] = msgspec.field(default_factory=dict)
    cap: Mapping[str, float] = msgspec.field(default_factory=dict)
    deny: Deny | None = None
    tags: tuple[str, ...] = ()
    cache: CachePolicy | None = None
    guardrails: tuple[str, ...] | None = None
    budget: str | None = None


def compile_actions(
    value: Any,
    path: str,
    problems: Problems,
    *,
    models: Collection[str] | None,
    providers: Collection[str] | None,
    buckets: Collection[str] | None = None,
    guardrails: Collection[str] | None = None,
) -> Actions:
    if value is None:
        return Actions()
    if not isinstance(value, Mapping):
        problems.add(path, "'then' is a mapping of actions")
        return Actions()
    fields: dict[str, Any] = {}
    for key, item in value.items():
        here = f"{path}.{key}"
        if key not in ACTIONS:
            close = difflib.get_close_matches(str(key), ACTIONS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.add(here, f"unknown action '{key}'{hint}; actions are {', '.join(ACTIONS)}")
        elif key == "route":
            targets, sticky = _route(item, here, problems, models, providers)
            fields["route"] = targets
            fields["sticky"] = sticky
        elif key == "fallbacks":
            fields["fallbacks"] = tuple(_model_list(item, here, problems, models))
        elif key == "set":
            fields["set"] = _parameters(item, here, problems, numeric=False)
        elif key == "cap":
            fields["cap"] = _parameters(item, here, problems, numeric=True)
        elif key == "deny":
            fields["deny"] = _deny(item, here, problems)
        elif key == "tag":
            fields["tags"] = tuple(_names(item, here, problems, single_ok=True))
        elif key == "cache":
            fields["cache"] = _cache(item, here, problems)
        elif key == "guardrails":
            names = _names(item, here, problems, single_ok=True)
            fields["guardrails"] = tuple(names)
            for name in names:
                if guardrails is not None and name not in guardrails:
                    problems.add(
                        here,
                        _unknown("guardrail", name, guardrails)
                        + " (guardrails are defined under guardrails.definitions in the config)",
                    )
        elif key == "budget":
            names = _names(item, here, problems, single_ok=True)
            fields["budget"] = names[0] if len(names) == 1 else None
            if len(names) != 1:
                problems.add(here, "name the one budget bucket a request charges")
            elif buckets is not None and names[0] not in buckets:
                problems.add(
                    here,
                    _unknown("budget bucket", names[0], buckets)
                    + " (buckets are defined under budgets.buckets in the config)",
                )
    if "deny" in fields and len(fields) > 1 and set(fields) - {"deny", "tags"}:
        problems.add(path, "'deny' refuses the request; only 'tag' may go with it")
    return Actions(**fields)


def _route(
    value: Any,
    path: str,
    problems: Problems,
    models: Collection[str] | None,
    providers: Collection[str] | None,
) -> tuple[tuple[RouteTarget, ...], bool]:
    if isinstance(value, str):
        target = _target(value, path, problems, models, providers)
        return ((target,) if target else ()), False
    if not isinstance(value, Mapping):
        problems.add(path, "'route' is a model name, {provider, model} or {targets: [...]}")
        return (), False
    if "targets" not in value:
        target = _target(value, path, problems, models, providers)
        return ((target,) if target else ()), False
    unknown = set(value) - {"targets", "sticky"}
    for key in sorted(map(str, unknown)):
        problems.add(f"{path}.{key}", "unknown field; a split has 'targets' and 'sticky'")
    sticky = value.get("sticky", False)
    if not isinstance(sticky, bool):
        problems.add(f"{path}.sticky", "'sticky' is true or false")
        sticky = False
    raw = value["targets"]
    if not isinstance(raw, list) or not raw:
        problems.add(f"{path}.targets", "a non-empty list of {model, weight}")
        return (), sticky
    if len(raw) > MAX_TARGETS:
        problems.add(f"{path}.targets", f"at most {MAX_TARGETS} targets")
    targets = []
    for index, item in enumerate(raw):
        target = _target(item, f"{path}.targets[{index}]", problems, models, providers)
        if target is not None:
            targets.append(target)
    return tuple(targets), sticky


def _target(
    value: Any,
    path: str,
    problems: Problems,
    models: Collection[str] | None,
    providers: Collection[str] | None,
) -> RouteTarget | None:
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, Mapping):
        problems.add(path, "a target is a model name or {model, provider, weight}")
        return None
    unknown = set(value) - {"model", "provider", "weight"}
    for key in sorted(map(str, unknown)):
        problems.add(f"{path}.{key}", "unknown field; a target has 'model', 'provider', 'weight'")
    model = value.get("model")
    provider = value.get("provider")
    weight = value.get("weight", 1)
    ok = True
    if not isinstance(model, str) or not model:
        problems.add(f"{path}.model", "a model name is required")
        ok = False
    if provider is not None:
        if not isinstance(provider, str) or not provider:
            problems.add(f"{path}.provider", "a provider name")
            ok = False
        elif providers is not None and provider not in providers:
            problems.add(f"{path}.provider", _unknown("provider", provider, providers))
            ok = False
    elif ok and models is not None and model not in models:
        problems.add(f"{path}.model", _unknown("model", str(model), models))
        ok = False
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        problems.add(f"{path}.weight", f"a positive number, got {weight!r}")
        ok = False
    if not ok:
        return None
    return RouteTarget(model=str(model), provider=provider, weight=float(weight))


def _model_list(
    value: Any, path: str, problems: Problems, models: Collection[str] | None
) -> list[str]:
    names = _names(value, path, problems, single_ok=True)
    if models is not None:
        for index, name in enumerate(names):
            if name not in models:
                problems.add(f"{path}[{index}]", _unknown("model", name, models))
    return names


def _names(value: Any, path: str, problems: Problems, *, single_ok: bool) -> list[str]:
    if single_ok and isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.add(path, "a list of names")
        return []
    names = []
    for index, item in enumerate(value):
        if isinstance(item, str) and _NAME.fullmatch(item):
            names.append(item)
        else:
            problems.add(f"{path}[{index}]", f"not a valid name: {item!r}")
    return names


def _parameters(value: Any, path: str, problems: Problems, *, numeric: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value:
        problems.add(path, "a non-empty mapping of request parameters")
        return {}
    found: dict[str, Any] = {}
    for key, item in value.items():
        here = f"{path}.{key}"
        if not isinstance(key, str) or not _PARAMETER.fullmatch(key):
            problems.add(here, "not a request parameter name")
        elif key in PROTECTED_PARAMETERS:
            hint = " (use 'route')" if key == "model" else ""
            problems.add(here, f"'{key}' cannot be changed by a rule{hint}")
        elif (
            key in COUNTED_PARAMETERS
            and counted(
                int(item) if numeric and _whole_float(item) else item, COUNTED_PARAMETERS[key]
            )
            is None
        ):
            problems.add(
                here, f"'{key}' is a whole number from 1 to {COUNTED_PARAMETERS[key]}, got {item!r}"
            )
        elif numeric and (
            isinstance(item, bool)
            or not isinstance(item, int | float)
            or not 0 <= item < math.inf  # also refuses NaN
        ):
            problems.add(here, f"'cap' takes a finite non-negative number, got {item!r}")
        else:
            found[key] = item
    return found


def _whole_float(value: Any) -> bool:
    """A float such as 512.0 (YAML's `512.0`): a cap applies it as the integer."""
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _deny(value: Any, path: str, problems: Problems) -> Deny:
    if value is True or value is None:
        return Deny()
    if isinstance(value, str):
        return Deny(message=value)
    if not isinstance(value, Mapping):
        problems.add(path, "'deny' is true, a message, or {status, message, code}")
        return Deny()
    unknown = set(value) - {"status", "message", "code"}
    for key in sorted(map(str, unknown)):
        problems.add(f"{path}.{key}", "unknown field; 'deny' has 'status', 'message', 'code'")
    status = value.get("status", 403)
    message = value.get("message", DENY_MESSAGE)
    code = value.get("code", DENY_CODE)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 499:
        problems.add(f"{path}.status", f"a client error status 400-499, got {status!r}")
        status = 403
    if not isinstance(message, str) or not message or len(message) > 1000:
        problems.add(f"{path}.message", "a non-empty message of at most 1000 characters")
        message = DENY_MESSAGE
    if not isinstance(code, str) or not _PARAMETER.fullmatch(code):
        problems.add(f"{path}.code", "an error code like 'request_denied'")
        code = DENY_CODE
    return Deny(status=status, message=message, code=code)


def _cache(value: Any, path: str, problems: Problems) -> CachePolicy | None:
    if isinstance(value, bool):
        return CachePolicy(mode="on" if value else "off")
    if value in ("on", "off"):
        return CachePolicy(mode=value)
    if not isinstance(value, Mapping):
        problems.add(path, "'cache' is on, off, or {mode, ttl}")
        return None
    unknown = set(value) - {"mode", "ttl"}
    for key in sorted(map(str, unknown)):
        problems.add(f"{path}.{key}", "unknown field; 'cache' has 'mode' and 'ttl'")
    mode = value.get("mode", "on")
    if mode is True or mode is False:
        mode = "on" if mode else "off"
    if mode not in ("on", "off"):
        problems.add(f"{path}.mode", f"'on' or 'off', got {mode!r}")
        mode = "on"
    ttl = value.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        problems.add(f"{path}.ttl", f"a positive number of seconds, got {ttl!r}")
        ttl = None
    return CachePolicy(mode=mode, ttl=ttl)


def _unknown(kind: str, name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}"
