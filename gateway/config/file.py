"""The gateway's configuration file: loading, `${ENV}` interpolation, validation, frozen structs.

Validation reports every problem it finds, each prefixed with its path in the file
(`models.fast[1].provider: unknown provider 'opnai' (did you mean 'openai'?)`), so one run of
`steerway check-config` shows all that needs fixing. Values that came from the environment are
shown in messages by their `${VAR}` reference, never expanded, and `api_key` values are `Secret`s:
a key can reach neither an error message nor the repr of a config.
"""

from __future__ import annotations

import difflib
import hmac
import os
import re
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml

from gateway.config.alerts import AlertsConfig, parse_alerts
from gateway.config.console import ConsoleConfig, parse_console
from gateway.config.evaluators import EvaluationConfig, parse_evaluation
from gateway.config.live import LiveConfig, parse_live
from gateway.config.metrics import MetricsConfig, parse_metrics
from gateway.config.otlp import OtlpConfig, parse_otlp
from gateway.config.retention import parse_retention
from gateway.config.sampling import SamplingConfig, parse_sampling
from gateway.config.server import ServerConfig, parse_server
from gateway.guardrails.config import GuardrailsConfig, parse_guardrails
from gateway.guardrails.moderation_config import check_references as check_moderation_references
from gateway.inbound.responses_config import ResponsesConfig, parse_responses
from gateway.ingest.config import OtlpIngestConfig, parse_otlp_ingest
from gateway.keys.limits import InvalidField, usd_to_micros
from providers.pricing import ModelPrice, PriceTable
from rules.compiler import RuleError, compile_rules, normalise_rule
from telemetry.retention.policy import RetentionConfig

PROVIDER_TYPES: Final = ("openai", "anthropic", "gemini", "azure")
DEFAULT_BASE_URLS: Final = {
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}
DEFAULT_ANTHROPIC_VERSION: Final = "2023-06-01"
STORE_CONTENT_MODES: Final = ("full", "redacted", "none")
DURABILITY_MODES: Final = ("memory", "spill-first")
WRITER_MODES: Final = ("inline", "process")

_TOP_LEVEL: Final = "(top level)"
_PROVIDER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE_REFERENCE: Final = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_USERINFO: Final = re.compile(r"//[^/?#]*@")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the upstream client computes itself; a configured value would corrupt the request.
_RESERVED_HEADERS: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
)


class Secret:
    """A credential: shows as `***` everywhere; `.reveal()` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, format_spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds allowed for one upstream call: to connect, to the first response byte, in all."""

    connect: float = 5.0
    first_byte: float = 60.0
    total: float = 600.0


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    base_url: str
    """Without a trailing slash: adapters append paths such as `/chat/completions`."""
    api_key: Secret | None = None
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    timeouts: Timeouts = msgspec.field(default_factory=Timeouts)
    api_version: str | None = None
    """`azure`: the `api-version` query parameter (required); `anthropic`: the
    `anthropic-version` header (default 2023-06-01)."""
    forward_fields: tuple[str, ...] = ()
    """`anthropic`: request fields passed through untranslated (Anthropic rejects unknown ones)."""
    passthrough: bool | None = None
    """`openai`/`anthropic`: whether requests in the provider's own API (Responses, Messages)
    pass through untranslated; None: the default of `providers.native.native_api`."""

    def _safe_fields(self) -> Iterator[tuple[str, Any]]:
        """Field values fit to show: header values may carry credentials, URLs a password."""
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if field == "headers":
                value = dict.fromkeys(value, "***")
            elif field == "base_url":
                value = _without_password(value)
            yield field, value

    def __repr__(self) -> str:
        shown = ", ".join(f"{field}={value!r}" for field, value in self._safe_fields())
        return f"ProviderConfig({shown})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return list(self._safe_fields())


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    """One place a public model can be served: a provider and the provider's own model name."""

    provider: str
    model: str
    weight: float = 1.0
    price: ModelPrice | None = None
    """Overrides the price table for this deployment only."""
    rpm: int | None = None
    """Requests per minute this deployment may take; None: no limit."""
    tpm: int | None = None
    """Tokens (estimated input + max output) per minute; None: no limit."""

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"

    def price_in(self, table: PriceTable) -> ModelPrice | None:
        """This deployment's own price, else the table's price for its model."""
        return self.price if self.price is not None else table.lookup(self.model)


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Retries of one public model's deployments, before any fallback is tried."""

    attempts: int = 0
    """Retries after the first attempt; 0 by default: the OpenAI SDK already retries twice on
    its own, and retries at both ends multiply."""
    backoff: float = 0.25
    """Seconds before the first retry; doubled each time, with full jitter."""
    max_backoff: float = 8.0


class CooldownConfig(msgspec.Struct, frozen=True, kw_only=True):
    failures: int = 3
    window: float = 60.0
    period: float = 30.0


class ModelTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Overrides of the provider's timeouts for one public model; None keeps the provider's."""

    connect: float | None = None
    first_token: float | None = None
    total: float | None = None


STRATEGIES: Final = ("weighted", "latency", "least_busy")
FALLBACK_TRIGGERS: Final = ("error", "context_window", "content_filter")


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A public model name and the deployments that serve it."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: str = "weighted"
    retries: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    fallbacks: tuple[str, ...] = ()
    fallback_on: tuple[str, ...] = ("error", "context_window")
    cooldown: CooldownConfig = msgspec.field(default_factory=CooldownConfig)
    timeouts: ModelTimeouts = msgspec.field(default_factory=ModelTimeouts)


class TelemetryConfig(msgspec.Struct, frozen=True, kw_only=True):
    store_content: Literal["full", "redacted", "none"] = "full"
    """`redacted` stores prompts and answers with personal data masked (a PII scan, off the
    request path, before each write)."""
    queue_size: int = 100_000
    batch_size: int = 256
    flush_interval_ms: int = 200
    spill_dir: str = "./var/spill"
    unauthenticated_traces_per_minute: int = 0
    """Requests refused before a key was accepted are counted in a metric; this many a minute
    (per worker) are also stored as traces. A flood cannot grow the database past it."""
    rollup_fold_interval_ms: int = 10_000
    """How often (Postgres) the hour and day roll-ups are summed from the minute rows the
    recorder writes (`telemetry.rollup_folding`); analytics read the hours not summed yet from
    the minute rows, so this changes the database's work, not what the console shows."""
    durability: Literal["memory", "spill-first"] = "memory"
    """`spill-first`: each request's records are fsynced to a journal in `spill_dir` before its
    answer ends, so a crash loses none of them; `memory` does not wait for the disk."""
    writer: Literal["inline", "process"] = "inline"
    """`process`: batches are turned into rows and written by a child process of each worker
    (`telemetry.writer_process`), off the serving process's event loop and GIL."""
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    sampling: SamplingConfig = msgspec.field(default_factory=SamplingConfig)
    """Which requests keep their spans, decisions and content (`gateway.config.sampling`)."""
    otlp: OtlpConfig | None = None
    """Where the recorder's background path exports spans over OTLP/HTTP; None: nowhere."""


class LimitsConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_body_bytes: int = 20 * 1024 * 1024


class AuthConfig(msgspec.Struct, frozen=True, kw_only=True):
    key_cache_ttl_seconds: float = 1.0
    stale_key_ttl_seconds: float = 0.0
    """While the database is away, keys verified within this many seconds keep being served
    from the cache; 0 (the default): they are answered 503 like any other."""


REDIS_ERROR_POLICIES: Final = ("open", "closed")
BUDGET_WINDOWS: Final = ("daily", "weekly", "monthly", "total")


class CacheConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The exact-match response cache (Redis when STEERWAY_REDIS_URL is set, else in-process)."""

    enabled: bool = True
    """Requests with temperature 0 are cached by default; others only when a rule or the
    `x-steerway-cache: ttl=<s>` header asks."""
    ttl_seconds: int = 3600
    max_bytes: int = 256 * 1024 * 1024
    """In-process backend only: least recently used answers go first past this size."""
    on_redis_error: str = "open"


class BudgetSpec(msgspec.Struct, frozen=True, kw_only=True):
    limit_usd: Decimal
    window: str  # daily | weekly | monthly | total
    soft_percent: float | None = None


class BudgetsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Budgets not tied to a key or workspace: per end user, and named buckets for rules."""

    timezone: str = "UTC"
    """Where days, weeks (from Monday) and months begin."""
    end_user: tuple[BudgetSpec, ...] = ()
    buckets: Mapping[str, tuple[BudgetSpec, ...]] = msgspec.field(default_factory=dict)
    on_redis_error: str = "closed"
    """Money: by default a request is refused (503) rather than served unaccounted."""


class RateLimitsConfig(msgspec.Struct, frozen=True, kw_only=True):
    on_redis_error: str = "open"


class RedisConfig(msgspec.Struct, frozen=True, kw_only=True):
    timeout_ms: int = 200
    """Longest wait for one Redis call on the request path; past it the concern's
    on_redis_error policy applies."""


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    providers: Mapping[str, ProviderConfig] = msgspec.field(default_factory=dict)
    models: Mapping[str, ModelRoute] = msgspec.field(default_factory=dict)
    prices: Mapping[str, ModelPrice] = msgspec.field(default_factory=dict)
    """Per-model price overrides on top of the shipped table, by the provider's model name."""
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    budgets: BudgetsConfig = msgspec.field(default_factory=BudgetsConfig)
    rate_limits: RateLimitsConfig = msgspec.field(default_factory=RateLimitsConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    guardrails: GuardrailsConfig = msgspec.field(default_factory=GuardrailsConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    console: ConsoleConfig = msgspec.field(default_factory=ConsoleConfig)
    live: LiveConfig = msgspec.field(default_factory=LiveConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    otlp_ingest: OtlpIngestConfig = msgspec.field(default_factory=OtlpIngestConfig)
    evaluation: EvaluationConfig = msgspec.field(default_factory=EvaluationConfig)
    """The judge workers' settings and the evaluators the file declares (`evaluators`)."""
    responses: ResponsesConfig = msgspec.field(default_factory=ResponsesConfig)
    """What `POST /v1/responses` stores and for how long."""
    rules: tuple[dict[str, Any], ...] = ()
    """Steering rules from the file, normalised (see `rules.compiler.normalise_rule`)."""

    def model_names(self) -> list[str]:
        """Public model names in the order the file declares them."""
        return list(self.models)

    def route(self, model: str) -> ModelRoute | None:
        return self.models.get(model)

    def deployments(self, model: str) -> tuple[Deployment, ...]:
        """The deployments serving public model `model`; empty when no such model is declared."""
        route = self.models.get(model)
        return route.deployments if route is not None else ()

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self.providers[name]
        except KeyError:
            raise KeyError(f"unknown provider {name!r}") from None

    def price_table(self, base: PriceTable | None = None) -> PriceTable:
        """`base` (default: the shipped table) with this config's `prices` applied."""
        table = PriceTable.shipped() if base is None else base
        return table.with_overrides(self.prices) if self.prices else table


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.source = source

    def __str__(self) -> str:
        return "\n".join(self.problems)


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Read, interpolate and validate the YAML file at `path`; raise `ConfigError` if unusable."""
    source = os.fspath(path)
    data, duplicate_keys = _read_yaml(source)
    try:
        config = parse_config(data, environ)
    except ConfigError as error:
        raise ConfigError(duplicate_keys + error.problems, source=source) from None
    if duplicate_keys:
        raise ConfigError(duplicate_keys, source=source)
    return config


def check_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every problem with the file at `path`; an empty list means it is valid."""
    try:
        load_config(path, environ)
    except ConfigError as error:
        return error.problems
    return []


def parse_config(
    data: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate an already-decoded config (as YAML would give), for configs built in code."""
    reader = _Reader()
    expanded = _Interpolator(os.environ if environ is None else environ, reader).expand(data, "")
    config = _parse_gateway(expanded, reader)
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


# --- reading the file -------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that also notes duplicate keys, which YAML would silently overwrite."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                mark = key_node.start_mark
                self.duplicate_keys.append(
                    f"{_position(mark)}: duplicate key {key_node.value!r}"
                    " (only the last one would count)"
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _position(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _read_yaml(source: str) -> tuple[Any, list[str]]:
    """The decoded document and the duplicate keys found in it."""
    try:
        with open(source, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise ConfigError([f"{source}: config file not found"], source=source) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory, not a config file"], source=source) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError([f"{source}: cannot read: {reason}"], source=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        message = f"{source}: not UTF-8 text (bad byte at offset {error.start})"
        raise ConfigError([message], source=source) from None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        where = _position(error.problem_mark) if error.problem_mark else source
        what = error.problem or error.context or "cannot be parsed"
        raise ConfigError([f"{where}: YAML syntax error: {what}"], source=source) from None
    except yaml.YAMLError as error:
        raise ConfigError(
            [f"{source}: not valid YAML ({type(error).__name__})"], source=source
        ) from None
    except RecursionError:
        raise ConfigError(
            [
                f"{source}: nests deeper than the YAML reader goes (lists and mappings inside "
                "one another)"
            ],
            source=source,
        ) from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        reason = str(error).split(":", 1)[0]
        raise ConfigError([f"{source}: a value cannot be read ({reason})"], source=source) from None
    finally:
        loader.dispose()
    return data, loader.duplicate_keys


# --- interpolation --------------------------------------------------------------------------


class _Unresolved:
    """Stands in for a string whose interpolation failed and was already reported."""

    def __repr__(self) -> str:
        return "<unresolved>"


_UNRESOLVED: Final = _Unresolved()


class _FromEnv(str):
    """An interpolated string; messages show `template` so no environment value leaks."""

    template: str

    def __new__(cls, value: str, template: str) -> _FromEnv:
        instance = super().__new__(cls, value)
        instance.template = template
        return instance


class _Interpolator:
    """Expands `${VAR}`, `${VAR:-default}` and `$$` in string values (never in keys)."""

    def __init__(self, environ: Mapping[str, str], reader: _Reader) -> None:
        self._environ = environ
        self._reader = reader

    def expand(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self._expand_string(value, path)
        if isinstance(value, Mapping):
            return {
                key: self.expand(item, _join(path, key) if isinstance(key, str) else path)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.expand(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    def _expand_string(self, text: str, path: str) -> str | _Unresolved:
        if "$" not in text:
            return text
        parts: list[str] = []
        referenced = failed = False
        position = 0
        while (dollar := text.find("$", position)) >= 0:
            parts.append(text[position:dollar])
            following = text[dollar + 1 : dollar + 2]
            if following == "$":
                parts.append("$")
                position = dollar + 2
                continue
            if following != "{":
                parts.append("$")
                position = dollar + 1
                continue
            end = text.find("}", dollar + 2)
            if end < 0:
                self._reader.report(
                    path, "unterminated '${' (write '$$' for a literal dollar sign)"
                )
                return _UNRESOLVED
            value = self._lookup(text[dollar + 2 : end], path)
            if value is None:
                failed = True
            else:
                parts.append(value)
            referenced = True
            position = end + 1
        parts.append(text[position:])
        if failed:
            return _UNRESOLVED
        expanded = "".join(parts)
        return _FromEnv(expanded, text) if referenced else expanded

    def _lookup(self, reference: str, path: str) -> str | None:
        name, has_default, default = reference.partition(":-")
        if not _ENV_NAME.fullmatch(name):
            self._reader.report(path, f"invalid environment variable name {name!r} in '${{...}}'")
            return None
        value = self._environ.get(name)
        if has_default:
            return value or default
        if value is None:
            self._reader.report(path, f"environment variable {name} is not set")
        return value


# --- validation -------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    shown = key if key and not any(c.isspace() or c in "[]'\"" for c in key) else repr(key)
    return f"{path}.{shown}" if path else shown


def _show(value: Any) -> str:
    """A value for an error message; environment-derived strings show as their reference."""
    if isinstance(value, _FromEnv):
        return f"{value.template!r} (from the environment)"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return _describe_type(value)


def _describe_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _without_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return _USERINFO.sub("//***@", url)
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


class _Reader:
    """Typed reads of decoded YAML that record a problem for each bad value and carry on.

    Each read returns a usable stand-in (the default) on failure so that checking can go on to
    the rest of the file; the config built from stand-ins is thrown away if any problem exists.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or _TOP_LEVEL}: {message}")

    def entries(self, value: Any, path: str) -> list[tuple[str, Any]]:
        """The items of a free-form mapping (names chosen by the user), `null` being empty."""
        if value is None or value is _UNRESOLVED:
            return []
        if not isinstance(value, Mapping):
            self.report(path, f"expected a mapping, got {_describe_type(value)}")
            return []
        items: list[tuple[str, Any]] = []
        for key, item in value.items():
            if isinstance(key, str) and key:
                items.append((key, item))
            else:
                self.report(path, f"names must be non-empty strings, got {_show(key)}")
        return items

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The fields of a fixed-shape mapping; reports unknown and missing ones."""
        if value is _UNRESOLVED:
            return {}
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.report(path, f"expected a mapping, got {_describe_type(value)}")
            return {}
        found: dict[str, Any] = {}
        misspelled: set[str] = set()
        for key, item in value.items():
            if key in known:
                found[key] = item
                continue
            close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            misspelled.update(close)
            self.report(path, f"unknown field {_show(key)}{hint}")
        for key in required:
            if found.get(key) is None and key not in misspelled:
                self.report(path, f"missing required field {key!r}")
        return found

    def string(self, value: Any, path: str, *, default: str = "") -> str:
        if value is None or value is _UNRESOLVED:
            return default
        if not isinstance(value, str):
            self.report(path, f"expected a string, got {_show(value)}")
            return default
        if not value:
            self.report(path, "must not be empty")
            return default
        return str.__str__(value)

    def secret(self, value: Any, path: str) -> Secret | None:
        """An optional credential; an empty value (`${KEY:-}`) means none."""
        if value is None or value is _UNRESOLVED or isinstance(value, Secret):
            return value if isinstance(value, Secret) else None
        if not isinstance(value, str):
            self.report(path, f"expected a string, got {_describe_type(value)}")
            return None
        return Secret(str.__str__(value)) if value else None

    def reference(self, value: Any, path: str) -> str | None:
        """A value that must be written as one `${ENV_NAME}` reference (a secret kept out of
        the file and of the database): the reference as written, not its value."""
        if value is None or value is _UNRESOLVED:
            return None
        template = value.template if isinstance(value, _FromEnv) else None
        if template is None or not _WHOLE_REFERENCE.fullmatch(template):
            self.report(path, "expected a ${ENV_NAME} reference: never the secret itself")
            return None
        return template

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str) -> str:
        if value is None or value is _UNRESOLVED:
            return default
        if value not in options:
            self.report(path, f"expected one of {', '.join(options)}; got {_show(value)}")
            return default
        return str.__str__(value)

    def positive_number(self, value: Any, path: str, *, default: float) -> float:
        return self._number(value, path, default=default, allow_zero=False)

    def non_negative_number(self, value: Any, path: str, *, default: float) -> float:
        return self._number(value, path, default=default, allow_zero=True)

    def _number(self, value: Any, path: str, *, default: float, allow_zero: bool) -> float:
        if value is None or value is _UNRESOLVED:
            return default
        number = _as_decimal(value)
        if number is None or number < 0 or (number == 0 and not allow_zero):
            kind = "a non-negative" if allow_zero else "a positive"
            self.report(path, f"expected {kind} number, got {_show(value)}")
            return default
        return float(number)

    def positive_integer(self, value: Any, path: str, *, default: int) -> int:
        return self._integer(value, path, default=default, allow_zero=False)

    def non_negative_integer(self, value: Any, path: str, *, default: int) -> int:
        return self._integer(value, path, default=default, allow_zero=True)

    def optional_positive_integer(self, value: Any, path: str) -> int | None:
        """A positive integer, or None when absent or null."""
        if value is None or value is _UNRESOLVED:
            return None
        problems = len(self.problems)
        number = self._integer(value, path, default=0, allow_zero=False)
        return None if len(self.problems) > problems else number

    def _integer(self, value: Any, path: str, *, default: int, allow_zero: bool) -> int:
        if value is None or value is _UNRESOLVED:
            return default
        number = _as_decimal(value)
        lowest = 0 if allow_zero else 1
        if number is None or number < lowest or number != number.to_integral_value():
            kind = "a non-negative" if allow_zero else "a positive"
            self.report(path, f"expected {kind} integer, got {_show(value)}")
            return default
        return int(number)

    def money(self, value: Any, path: str) -> Decimal:
        """A non-negative price, kept exact: `0.15` reads as Decimal('0.15')."""
        if value is None or value is _UNRESOLVED:
            return Decimal(0)
        number = _as_decimal(value)
        if number is None or number < 0:
            self.report(path, f"expected a non-negative number of US dollars, got {_show(value)}")
            return Decimal(0)
        return number

    def http_url(self, value: Any, path: str) -> str:
        url = self.string(value, path)
        if not url:
            return url
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # a malformed port raises ValueError
        except ValueError:
            valid = False
        if not valid:
            shown = value if isinstance(value, _FromEnv) else _without_password(url)
            self.report(path, f"not an http(s) URL: {_show(shown)}")
            return ""
        return url.rstrip("/")


def _parse_gateway(data: Any, reader: _Reader) -> GatewayConfig:
    top = reader.fields(
        data,
        "",
        (
            "providers",
            "models",
            "prices",
            "telemetry",
            "limits",
            "auth",
            "cache",
            "budgets",
            "rate_limits",
            "redis",
            "guardrails",
            "metrics",
            "server",
            "console",
            "live",
            "alerts",
            "otlp_ingest",
            "evaluation",
            "evaluators",
            "responses",
            "rules",
        ),
    )
    provider_values = reader.entries(top.get("providers"), "providers")
    providers = {
        name: _parse_provider(name, value, _join("providers", name), reader)
        for name, value in provider_values
    }
    declared = [name for name, _ in provider_values]
    models = {
        name: _parse_route(name, value, _join("models", name), declared, reader)
        for name, value in reader.entries(top.get("models"), "models")
    }
    for name, route in models.items():
        for index, fallback in enumerate(route.fallbacks):
            where = f"{_join(_join('models', name), 'fallbacks')}[{index}]"
            if fallback == name:
                reader.report(where, "a model cannot fall back to itself")
            elif fallback not in models:
                hint = _did_you_mean(fallback, list(models))
                reader.report(where, f"unknown model {_show(fallback)}{hint}")
    prices = {
        name: _parse_price(value, _join("prices", name), reader)
        for name, value in reader.entries(top.get("prices"), "prices")
    }
    budgets = _parse_budgets(top.get("budgets"), "budgets", reader)
    guardrails = parse_guardrails(top.get("guardrails"), "guardrails", reader)
    check_moderation_references(guardrails, providers, list(models), reader)
    return GatewayConfig(
        providers=providers,
        models=models,
        prices=prices,
        rules=_parse_rules(
            top.get("rules"),
            list(models),
            declared,
            list(budgets.buckets),
            guardrails.names,
            reader,
        ),
        guardrails=guardrails,
        metrics=parse_metrics(top.get("metrics"), "metrics", reader),
        server=parse_server(top.get("server"), "server", reader),
        console=parse_console(top.get("console"), "console", reader),
        live=parse_live(top.get("live"), "live", reader),
        alerts=parse_alerts(top.get("alerts"), "alerts", reader),
        otlp_ingest=parse_otlp_ingest(top.get("otlp_ingest"), "otlp_ingest", reader),
        evaluation=parse_evaluation(
            top.get("evaluation"), top.get("evaluators"), list(models), reader
        ),
        responses=parse_responses(top.get("responses"), "responses", reader),
        telemetry=_parse_telemetry(top.get("telemetry"), "telemetry", reader),
        limits=_parse_limits(top.get("limits"), "limits", reader),
        auth=_parse_auth(top.get("auth"), "auth", reader),
        cache=_parse_cache(top.get("cache"), "cache", reader),
        budgets=budgets,
        rate_limits=RateLimitsConfig(
            on_redis_error=_redis_policy(
                reader.fields(top.get("rate_limits"), "rate_limits", ("on_redis_error",)),
                "rate_limits",
                reader,
                default="open",
            )
        ),
        redis=RedisConfig(
            timeout_ms=reader.positive_integer(
                reader.fields(top.get("redis"), "redis", ("timeout_ms",)).get("timeout_ms"),
                "redis.timeout_ms",
                default=RedisConfig().timeout_ms,
            )
        ),
    )


def _parse_rules(
    value: Any,
    models: list[str],
    providers: list[str],
    buckets: list[str],
    guardrails: list[str],
    reader: _Reader,
) -> tuple[dict[str, Any], ...]:
    """Steering rules, checked against the models and providers declared in the same file."""
    if value is None or value is _UNRESOLVED:
        return ()
    if not isinstance(value, list):
        reader.report("rules", f"expected a list of rules, got {_describe_type(value)}")
        return ()
    try:
        compile_rules(
            value,
            path="rules",
            models=models,
            providers=providers,
            buckets=buckets,
            guardrails=guardrails,
        )
    except RuleError as error:
        reader.problems.extend(error.problems)
        return ()
    return tuple(normalise_rule(document) for document in value)


def _parse_provider(name: str, value: Any, path: str, reader: _Reader) -> ProviderConfig:
    if not _PROVIDER_NAME.fullmatch(name):
        reader.report(path, "invalid provider name: use letters, digits, '.', '_' and '-'")
    declared_type = value.get("type") if isinstance(value, Mapping) else None
    required = ["type"]
    if declared_type not in DEFAULT_BASE_URLS:
        required.append("base_url")
    if declared_type == "azure":
        required.append("api_version")
    fields = reader.fields(
        value,
        path,
        (
            "type",
            "base_url",
            "api_key",
            "headers",
            "timeouts",
            "api_version",
            "forward_fields",
            "passthrough",
        ),
        required=tuple(required),
    )
    provider_type = reader.string(fields.get("type"), _join(path, "type"))
    if provider_type and provider_type not in PROVIDER_TYPES:
        reader.report(
            _join(path, "type"),
            f"unknown provider type {_show(fields['type'])}; "
            f"expected one of: {', '.join(PROVIDER_TYPES)}",
        )
    api_version = None
    if fields.get("api_version") is not None:
        if provider_type not in ("azure", "anthropic"):
            reader.report(_join(path, "api_version"), "only azure and anthropic providers take it")
        api_version = reader.string(fields.get("api_version"), _join(path, "api_version")) or None
    elif provider_type == "anthropic":
        api_version = DEFAULT_ANTHROPIC_VERSION
    forward_fields: list[str] = []
    raw_forward = fields.get("forward_fields")
    if raw_forward is not None:
        forward_path = _join(path, "forward_fields")
        if provider_type != "anthropic":
            reader.report(forward_path, "only anthropic providers take it")
        elif not isinstance(raw_forward, list) or not all(
            isinstance(item, str) and item for item in raw_forward
        ):
            reader.report(forward_path, "expected a list of field names")
        else:
            forward_fields = [str.__str__(item) for item in raw_forward]
    passthrough = fields.get("passthrough")
    if passthrough is not None:
        if provider_type not in ("openai", "anthropic"):
            reader.report(_join(path, "passthrough"), "only openai and anthropic providers take it")
        elif not isinstance(passthrough, bool):
            reader.report(_join(path, "passthrough"), "expected true or false")
        passthrough = passthrough if isinstance(passthrough, bool) else None
    base_url = fields.get("base_url")
    if base_url is None and provider_type in DEFAULT_BASE_URLS:
        base_url = DEFAULT_BASE_URLS[provider_type]
    provider = ProviderConfig(
        name=name,
        type=provider_type,
        base_url=reader.http_url(base_url, _join(path, "base_url")),
        api_key=reader.secret(fields.get("api_key"), _join(path, "api_key")),
        headers=_parse_headers(fields.get("headers"), _join(path, "headers"), reader),
        timeouts=_parse_timeouts(fields.get("timeouts"), _join(path, "timeouts"), reader),
        api_version=api_version,
        forward_fields=tuple(forward_fields),
        passthrough=passthrough,
    )
    sends_authorization = (provider.type == "openai" and provider.api_key is not None) or any(
        header.lower() == "authorization" for header in provider.headers
    )
    if sends_authorization and urlsplit(provider.base_url).username is not None:
        reader.report(
            _join(path, "base_url"),
            "user credentials in the URL would be sent as an Authorization header, and "
            "this provider sends one already (its api_key or headers.Authorization)",
        )
    return provider


def _parse_headers(value: Any, path: str, reader: _Reader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, header_value in reader.entries(value, path):
        header_path = _join(path, name)
        if not _HEADER_NAME.fullmatch(name):
            reader.report(header_path, "not a valid HTTP header name")
        elif name.lower() in _RESERVED_HEADERS:
            reader.report(header_path, "set by the gateway itself; it cannot be configured")
        if header_value is _UNRESOLVED:
            continue
        if isinstance(header_value, int) and not isinstance(header_value, bool):
            header_value = str(header_value)
        if not isinstance(header_value, str):
            reader.report(header_path, f"expected a string, got {_describe_type(header_value)}")
        elif "\r" in header_value or "\n" in header_value:
            reader.report(header_path, "header values must not contain line breaks")
        else:
            headers[name] = str.__str__(header_value)
    return headers


def _parse_timeouts(value: Any, path: str, reader: _Reader) -> Timeouts:
    fields = reader.fields(value, path, ("connect", "first_byte", "total"))
    defaults = Timeouts()
    timeouts = Timeouts(
        connect=reader.positive_number(
            fields.get("connect"), _join(path, "connect"), default=defaults.connect
        ),
        first_byte=reader.positive_number(
            fields.get("first_byte"), _join(path, "first_byte"), default=defaults.first_byte
        ),
        total=reader.positive_number(
            fields.get("total"), _join(path, "total"), default=defaults.total
        ),
    )
    for name in ("connect", "first_byte"):
        if getattr(timeouts, name) > timeouts.total:
            reader.report(
                _join(path, name),
                f"{getattr(timeouts, name):g}s is longer than the total timeout "
                f"({timeouts.total:g}s)",
            )
    return timeouts


def _parse_route(
    name: str, value: Any, path: str, declared: list[str], reader: _Reader
) -> ModelRoute:
    options: dict[str, Any] = {}
    if isinstance(value, Mapping):
        fields = reader.fields(
            value,
            path,
            (
                "deployments",
                "strategy",
                "retries",
                "fallbacks",
                "fallback_on",
                "cooldown",
                "timeouts",
            ),
            required=("deployments",),
        )
        options = _parse_route_options(fields, path, reader)
        value = fields.get("deployments")
        path = _join(path, "deployments")
        if value is None:
            return ModelRoute(name=name, deployments=(), **options)
    if not isinstance(value, list):
        if value is not _UNRESOLVED:
            reader.report(
                path,
                "expected a list of deployments or a mapping with 'deployments', "
                f"got {_describe_type(value)}",
            )
        return ModelRoute(name=name, deployments=())
    if not value:
        reader.report(path, "expected at least one deployment")
    deployments = tuple(
        _parse_deployment(name, item, f"{path}[{index}]", declared, reader)
        for index, item in enumerate(value)
    )
    return ModelRoute(name=name, deployments=deployments, **options)


def _parse_route_options(fields: dict[str, Any], path: str, reader: _Reader) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if fields.get("strategy") is not None:
        options["strategy"] = reader.choice(
            fields["strategy"], _join(path, "strategy"), STRATEGIES, default="weighted"
        )
    if fields.get("retries") is not None:
        retry_path = _join(path, "retries")
        retry = reader.fields(fields["retries"], retry_path, ("attempts", "backoff", "max_backoff"))
        defaults = RetryPolicy()
        attempts = retry.get("attempts")
        options["retries"] = RetryPolicy(
            attempts=0
            if attempts == 0
            else reader.positive_integer(
                attempts, _join(retry_path, "attempts"), default=defaults.attempts
            ),
            backoff=reader.non_negative_number(
                retry.get("backoff"), _join(retry_path, "backoff"), default=defaults.backoff
            ),
            max_backoff=reader.non_negative_number(
                retry.get("max_backoff"),
                _join(retry_path, "max_backoff"),
                default=defaults.max_backoff,
            ),
        )
    for key in ("fallbacks", "fallback_on"):
        raw = fields.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in raw):
            reader.report(_join(path, key), "expected a list of names")
            continue
        if key == "fallback_on":
            for index, trigger in enumerate(raw):
                if trigger not in FALLBACK_TRIGGERS:
                    reader.report(
                        f"{_join(path, key)}[{index}]",
                        f"expected one of {', '.join(FALLBACK_TRIGGERS)}; got {_show(trigger)}",
                    )
        options[key] = tuple(str.__str__(item) for item in raw)
    if fields.get("cooldown") is not None:
        cool_path = _join(path, "cooldown")
        cool = reader.fields(fields["cooldown"], cool_path, ("failures", "window", "period"))
        defaults_c = CooldownConfig()
        options["cooldown"] = CooldownConfig(
            failures=reader.positive_integer(
                cool.get("failures"), _join(cool_path, "failures"), default=defaults_c.failures
            ),
            window=reader.positive_number(
                cool.get("window"), _join(cool_path, "window"), default=defaults_c.window
            ),
            period=reader.positive_number(
                cool.get("period"), _join(cool_path, "period"), default=defaults_c.period
            ),
        )
    if fields.get("timeouts") is not None:
        time_path = _join(path, "timeouts")
        times = reader.fields(fields["timeouts"], time_path, ("connect", "first_token", "total"))
        options["timeouts"] = ModelTimeouts(
            **{
                key: reader.positive_number(times[key], _join(time_path, key), default=1.0)
                for key in ("connect", "first_token", "total")
                if times.get(key) is not None
            }
        )
    return options


def _parse_deployment(
    public_name: str, value: Any, path: str, declared: list[str], reader: _Reader
) -> Deployment:
    fields = reader.fields(
        value,
        path,
        ("provider", "model", "weight", "price", "rpm", "tpm"),
        required=("provider",),
    )
    provider = reader.string(fields.get("provider"), _join(path, "provider"))
    if provider and provider not in declared:
        if not declared:
            hint = "; no providers are declared"
        else:
            hint = _did_you_mean(provider, declared) or f"; declared: {', '.join(declared)}"
        reader.report(
            _join(path, "provider"), f"unknown provider {_show(fields['provider'])}{hint}"
        )
    price = fields.get("price")
    return Deployment(
        provider=provider,
        model=reader.string(fields.get("model"), _join(path, "model"), default=public_name),
        weight=reader.positive_number(fields.get("weight"), _join(path, "weight"), default=1.0),
        price=None if price is None else _parse_price(price, _join(path, "price"), reader),
        rpm=None
        if fields.get("rpm") is None
        else reader.positive_integer(fields["rpm"], _join(path, "rpm"), default=1),
        tpm=None
        if fields.get("tpm") is None
        else reader.positive_integer(fields["tpm"], _join(path, "tpm"), default=1),
    )


def _parse_price(value: Any, path: str, reader: _Reader) -> ModelPrice:
    fields = reader.fields(
        value,
        path,
        ("input_per_million", "output_per_million", "cached_input_per_million"),
        required=("input_per_million", "output_per_million"),
    )
    cached = fields.get("cached_input_per_million")
    return ModelPrice(
        input_per_million=reader.money(
            fields.get("input_per_million"), _join(path, "input_per_million")
        ),
        output_per_million=reader.money(
            fields.get("output_per_million"), _join(path, "output_per_million")
        ),
        cached_input_per_million=(
            None
            if cached is None
            else reader.money(cached, _join(path, "cached_input_per_million"))
        ),
    )


def _parse_telemetry(value: Any, path: str, reader: _Reader) -> TelemetryConfig:
    fields = reader.fields(
        value,
        path,
        (
            "store_content",
            "queue_size",
            "batch_size",
            "flush_interval_ms",
            "rollup_fold_interval_ms",
            "spill_dir",
            "unauthenticated_traces_per_minute",
            "durability",
            "writer",
            "retention",
            "sampling",
            "otlp",
        ),
    )
    defaults = TelemetryConfig()
    store_content = reader.choice(
        fields.get("store_content"),
        _join(path, "store_content"),
        STORE_CONTENT_MODES,
        default=defaults.store_content,
    )
    durability = reader.choice(
        fields.get("durability"),
        _join(path, "durability"),
        DURABILITY_MODES,
        default=defaults.durability,
    )
    writer = reader.choice(
        fields.get("writer"), _join(path, "writer"), WRITER_MODES, default=defaults.writer
    )
    telemetry = TelemetryConfig(
        store_content="none"
        if store_content == "none"
        else "redacted"
        if store_content == "redacted"
        else "full",
        queue_size=reader.positive_integer(
            fields.get("queue_size"), _join(path, "queue_size"), default=defaults.queue_size
        ),
        batch_size=reader.positive_integer(
            fields.get("batch_size"), _join(path, "batch_size"), default=defaults.batch_size
        ),
        flush_interval_ms=reader.positive_integer(
            fields.get("flush_interval_ms"),
            _join(path, "flush_interval_ms"),
            default=defaults.flush_interval_ms,
        ),
        rollup_fold_interval_ms=reader.positive_integer(
            fields.get("rollup_fold_interval_ms"),
            _join(path, "rollup_fold_interval_ms"),
            default=defaults.rollup_fold_interval_ms,
        ),
        spill_dir=reader.string(
            fields.get("spill_dir"), _join(path, "spill_dir"), default=defaults.spill_dir
        ),
        unauthenticated_traces_per_minute=reader.non_negative_integer(
            fields.get("unauthenticated_traces_per_minute"),
            _join(path, "unauthenticated_traces_per_minute"),
            default=defaults.unauthenticated_traces_per_minute,
        ),
        durability="spill-first" if durability == "spill-first" else "memory",
        writer="process" if writer == "process" else "inline",
        retention=parse_retention(fields.get("retention"), _join(path, "retention"), reader),
        sampling=parse_sampling(fields.get("sampling"), _join(path, "sampling"), reader),
        otlp=parse_otlp(fields.get("otlp"), _join(path, "otlp"), reader),
    )
    if telemetry.batch_size > telemetry.queue_size:
        reader.report(
            _join(path, "batch_size"),
            f"{telemetry.batch_size} is larger than queue_size ({telemetry.queue_size})",
        )
    return telemetry


def _parse_limits(value: Any, path: str, reader: _Reader) -> LimitsConfig:
    fields = reader.fields(value, path, ("max_body_bytes",))
    return LimitsConfig(
        max_body_bytes=reader.positive_integer(
            fields.get("max_body_bytes"),
            _join(path, "max_body_bytes"),
            default=LimitsConfig().max_body_bytes,
        )
    )


def _parse_auth(value: Any, path: str, reader: _Reader) -> AuthConfig:
    fields = reader.fields(value, path, ("key_cache_ttl_seconds", "stale_key_ttl_seconds"))
    defaults = AuthConfig()
    return AuthConfig(
        key_cache_ttl_seconds=reader.non_negative_number(
            fields.get("key_cache_ttl_seconds"),
            _join(path, "key_cache_ttl_seconds"),
            default=defaults.key_cache_ttl_seconds,
        ),
        stale_key_ttl_seconds=reader.non_negative_number(
            fields.get("stale_key_ttl_seconds"),
            _join(path, "stale_key_ttl_seconds"),
            default=defaults.stale_key_ttl_seconds,
        ),
    )


def _redis_policy(fields: dict[str, Any], path: str, reader: _Reader, *, default: str) -> str:
    return reader.choice(
        fields.get("on_redis_error"),
        _join(path, "on_redis_error"),
        REDIS_ERROR_POLICIES,
        default=default,
    )


def _parse_cache(value: Any, path: str, reader: _Reader) -> CacheConfig:
    fields = reader.fields(value, path, ("enabled", "ttl_seconds", "max_bytes", "on_redis_error"))
    defaults = CacheConfig()
    enabled = fields.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        reader.report(_join(path, "enabled"), f"expected true or false, got {_show(enabled)}")
        enabled = defaults.enabled
    return CacheConfig(
        enabled=enabled,
        ttl_seconds=reader.positive_integer(
            fields.get("ttl_seconds"), _join(path, "ttl_seconds"), default=defaults.ttl_seconds
        ),
        max_bytes=reader.positive_integer(
            fields.get("max_bytes"), _join(path, "max_bytes"), default=defaults.max_bytes
        ),
        on_redis_error=_redis_policy(fields, path, reader, default=defaults.on_redis_error),
    )


def _parse_budgets(value: Any, path: str, reader: _Reader) -> BudgetsConfig:
    fields = reader.fields(value, path, ("timezone", "end_user", "buckets", "on_redis_error"))
    defaults = BudgetsConfig()
    timezone = reader.string(fields.get("timezone"), _join(path, "timezone"), default="UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        reader.report(_join(path, "timezone"), f"unknown time zone {_show(timezone)}")
        timezone = "UTC"
    buckets = {
        name: _parse_budget_list(item, _join(_join(path, "buckets"), name), reader)
        for name, item in reader.entries(fields.get("buckets"), _join(path, "buckets"))
    }
    return BudgetsConfig(
        timezone=timezone,
        end_user=_parse_budget_list(fields.get("end_user"), _join(path, "end_user"), reader),
        buckets=buckets,
        on_redis_error=_redis_policy(fields, path, reader, default=defaults.on_redis_error),
    )


def _parse_budget_list(value: Any, path: str, reader: _Reader) -> tuple[BudgetSpec, ...]:
    """One budget (a mapping) or several (a list), each {limit_usd, window, soft_percent}."""
    if value is None or value is _UNRESOLVED:
        return ()
    items = value if isinstance(value, list) else [value]
    budgets = []
    for index, item in enumerate(items):
        here = f"{path}[{index}]" if isinstance(value, list) else path
        fields = reader.fields(
            item, here, ("limit_usd", "window", "soft_percent"), ("limit_usd", "window")
        )
        if "limit_usd" not in fields or "window" not in fields:
            continue
        soft = fields.get("soft_percent")
        if soft is not None and (
            isinstance(soft, bool) or not isinstance(soft, int | float) or not 0 < soft < 100
        ):
            reader.report(
                _join(here, "soft_percent"),
                f"expected a percentage between 0 and 100, got {_show(soft)}",
            )
            soft = None
        limit = reader.money(fields["limit_usd"], _join(here, "limit_usd"))
        if limit == 0 and _as_decimal(fields["limit_usd"]) == 0:
            reader.report(_join(here, "limit_usd"), "a budget must be more than 0 US dollars")
        elif limit > 0:
            try:  # what the budgets will hold it as: whole micro-dollars, up to a maximum
                usd_to_micros(format(limit, "f"), _join(here, "limit_usd"))
            except InvalidField as error:
                reader.report(error.param, error.problem)
        budgets.append(
            BudgetSpec(
                limit_usd=limit,
                window=reader.choice(
                    fields["window"], _join(here, "window"), BUDGET_WINDOWS, default="total"
                ),
                soft_percent=None if soft is None else float(soft),
            )
        )
    return tuple(budgets)
