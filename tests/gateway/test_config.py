import copy
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from gateway.config.file import (
    ConfigError,
    Deployment,
    GatewayConfig,
    Secret,
    check_config,
    load_config,
    parse_config,
)
from gateway.keys.limits import MAX_LIMIT_USD
from providers.pricing import ModelPrice, PriceTable

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "steerway.yaml"
KEY = "sk-test-7f3a9c1e5b"
ENV = {"OPENAI_API_KEY": KEY}

PROVIDERS = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    return check_config(write(tmp_path, text), ENV if environ is None else environ)


# --- the example and the shapes -----------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE, ENV)
    assert config.model_names() == ["gpt-4o-mini", "fast", "text-embedding-3-small", "chat"]
    chat = config.route("chat")
    assert chat is not None and chat.fallbacks and chat.retries.attempts > 0
    openai = config.provider("openai")
    assert openai.type == "openai"
    assert openai.base_url == "https://api.openai.com/v1"
    assert openai.api_key is not None and openai.api_key.reveal() == KEY
    assert openai.headers == {"X-Extra": "value"}
    assert (openai.timeouts.connect, openai.timeouts.first_byte, openai.timeouts.total) == (
        5,
        60,
        600,
    )
    local = config.provider("local-vllm")
    assert local.api_key is None
    assert local.headers == {}
    fast = config.deployments("fast")
    assert [(d.provider, d.model, d.weight) for d in fast] == [
        ("local-vllm", "qwen2.5-7b-instruct", 3),
        ("openai", "gpt-4o-mini", 1),
    ]
    assert fast[0].price is None
    assert fast[1].price == ModelPrice(Decimal("0.15"), Decimal("0.6"))
    assert config.telemetry.store_content == "full"
    assert config.telemetry.durability == "memory"
    assert config.telemetry.writer == "inline"
    assert config.limits.max_body_bytes == 20 * 1024 * 1024
    assert config.auth.key_cache_ttl_seconds == 1.0
    assert config.auth.stale_key_ttl_seconds == 0.0
    assert [rule["id"] for rule in config.rules] == [
        "premium-to-chat",
        "short-prompts-local",
        "free-tier-limits",
        "support-masks-pii",
    ]
    assert list(config.guardrails.definitions) == ["pii", "injection"]
    assert config.rules[2]["continue"] is True


def test_empty_file_is_an_empty_valid_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing configured yet\n"), {})
    assert config == GatewayConfig()
    assert config.model_names() == []
    assert config.providers == {}
    assert config.telemetry.queue_size == 100_000
    assert config.telemetry.batch_size == 256
    assert config.telemetry.flush_interval_ms == 200
    assert config.telemetry.spill_dir == "./var/spill"


def test_list_and_mapping_model_forms_mean_the_same(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            PROVIDERS
            + """
models:
  as-list:
    - {provider: openai, model: gpt-4o}
  as-mapping:
    deployments:
      - {provider: openai, model: gpt-4o}
""",
        ),
        ENV,
    )
    assert config.deployments("as-list") == config.deployments("as-mapping")
    assert config.deployments("as-list") == (Deployment(provider="openai", model="gpt-4o"),)
    route = config.route("as-mapping")
    assert route is not None and route.name == "as-mapping"


def test_deployment_model_defaults_to_the_public_name(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, PROVIDERS + "models:\n  gpt-4o: [{provider: openai}]\n"), ENV
    )
    assert config.deployments("gpt-4o")[0].model == "gpt-4o"


def test_lookup_helpers() -> None:
    config = load_config(EXAMPLE, ENV)
    assert config.route("no-such-model") is None
    assert config.deployments("no-such-model") == ()
    with pytest.raises(KeyError, match="unknown provider 'nope'"):
        config.provider("nope")


def test_config_is_frozen() -> None:
    config = load_config(EXAMPLE, ENV)
    with pytest.raises(AttributeError):
        config.limits = config.limits  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.provider("openai").base_url = "http://elsewhere"  # type: ignore[misc]


def test_base_url_loses_its_trailing_slash() -> None:
    config = parse_config(
        {"providers": {"p": {"type": "openai", "base_url": "http://127.0.0.1:9/v1/"}}}
    )
    assert config.provider("p").base_url == "http://127.0.0.1:9/v1"


def test_parse_config_builds_a_config_in_code() -> None:
    config = parse_config(
        {
            "providers": {"mock": {"type": "openai", "base_url": "http://127.0.0.1:8001/v1"}},
            "models": {"mock-gpt": [{"provider": "mock"}]},
            "telemetry": {
                "store_content": "none",
                "durability": "spill-first",
                "writer": "process",
            },
        }
    )
    assert config.deployments("mock-gpt")[0].id == "mock/mock-gpt"
    assert config.telemetry.store_content == "none"
    assert config.telemetry.durability == "spill-first"
    assert config.telemetry.writer == "process"


# --- prices --------------------------------------------------------------------------------


def test_deployment_price_overrides_the_table_for_that_deployment_only() -> None:
    config = load_config(EXAMPLE, ENV)
    table = config.price_table()
    own, shared = config.deployments("fast")[1], config.deployments("gpt-4o-mini")[0]
    assert own.price_in(table) == ModelPrice(Decimal("0.15"), Decimal("0.6"))
    assert shared.price_in(table) == PriceTable.shipped().lookup("gpt-4o-mini")


def test_top_level_prices_extend_the_table(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
prices:
  my-finetune: {input_per_million: "1.10", output_per_million: 4.4, cached_input_per_million: 0.55}
""",
        ),
        {},
    )
    price = config.price_table().lookup("my-finetune")
    assert price == ModelPrice(Decimal("1.10"), Decimal("4.4"), Decimal("0.55"))
    assert config.price_table().cost("my-finetune", 1_000_000, 0) == Decimal("1.10")


# --- problems, each with its path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PROVIDERS + "models:\n  fast:\n    - {provider: openai}\n    - {provider: opnai}\n",
            "models.fast[1].provider: unknown provider 'opnai' (did you mean 'openai'?)",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: zzz}]\n",
            "models.fast[0].provider: unknown provider 'zzz'; declared: openai",
        ),
        (
            "models:\n  fast: [{provider: openai}]\n",
            "models.fast[0].provider: unknown provider 'openai'; no providers are declared",
        ),
        (
            "providers:\n  openai: {type: opneai, base_url: 'http://h'}\n",
            "providers.openai.type: unknown provider type 'opneai'; expected one of: openai, anthropic, gemini, azure",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: openai, weight: -1}]\n",
            "models.fast[0].weight: expected a positive number, got -1",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: openai, weight: 0}]\n",
            "models.fast[0].weight: expected a positive number, got 0",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: openai, weight: heavy}]\n",
            "models.fast[0].weight: expected a positive number, got 'heavy'",
        ),
        (
            "providers:\n  openai: {type: openai, base_url: 'ftp://x'}\n",
            "providers.openai.base_url: not an http(s) URL: 'ftp://x'",
        ),
        (
            "providers:\n  openai: {type: openai, base_url: 'https://'}\n",
            "providers.openai.base_url: not an http(s) URL: 'https://'",
        ),
        (
            "telemetry:\n  store_content: some\n",
            "telemetry.store_content: expected one of full, redacted, none; got 'some'",
        ),
        (
            "telemetry:\n  durability: disk\n",
            "telemetry.durability: expected one of memory, spill-first; got 'disk'",
        ),
        (
            "telemetry:\n  writer: thread\n",
            "telemetry.writer: expected one of inline, process; got 'thread'",
        ),
        (
            "telemetry:\n  sampling:\n    evaluation: 'yes'\n",
            "telemetry.sampling.evaluation: expected true or false, got 'yes'",
        ),
        (
            PROVIDERS + "models:\n  gpt-4o-mini:\n    deployment: [{provider: openai}]\n",
            "models.gpt-4o-mini: unknown field 'deployment' (did you mean 'deployments'?)",
        ),
        (
            "providers:\n  openai: {type: openai}\n",
            "providers.openai: missing required field 'base_url'",
        ),
        (
            "modles: {}\n",
            "(top level): unknown field 'modles' (did you mean 'models'?)",
        ),
        (
            "- providers\n",
            "(top level): expected a mapping, got a list",
        ),
        (
            PROVIDERS + "models:\n  fast: []\n",
            "models.fast: expected at least one deployment",
        ),
        (
            PROVIDERS + "models:\n  fast: openai\n",
            "models.fast: expected a list of deployments or a mapping with 'deployments', "
            "got a string",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: openai, model: 4.1}]\n",
            "models.fast[0].model: expected a string, got 4.1",
        ),
        (
            PROVIDERS + "models:\n  fast: [{provider: openai, price: {input_per_million: 1}}]\n",
            "models.fast[0].price: missing required field 'output_per_million'",
        ),
        (
            PROVIDERS
            + "models:\n  fast:\n    - provider: openai\n"
            + "      price: {input_per_million: -1, output_per_million: 1}\n",
            "models.fast[0].price.input_per_million: expected a non-negative number of US "
            "dollars, got -1",
        ),
        (
            "telemetry: {queue_size: 10, batch_size: 20}\n",
            "telemetry.batch_size: 20 is larger than queue_size (10)",
        ),
        (
            "telemetry: {flush_interval_ms: 1.5}\n",
            "telemetry.flush_interval_ms: expected a positive integer, got 1.5",
        ),
        (
            "limits: {max_body_bytes: true}\n",
            "limits.max_body_bytes: expected a positive integer, got true",
        ),
        (
            "auth: {key_cache_ttl_seconds: -0.5}\n",
            "auth.key_cache_ttl_seconds: expected a non-negative number, got -0.5",
        ),
        (
            "auth: {stale_key_ttl_seconds: '5m'}\n",
            "auth.stale_key_ttl_seconds: expected a non-negative number, got '5m'",
        ),
        (
            "providers:\n  p:\n    type: openai\n    base_url: http://h\n"
            "    timeouts: {first_byte: 900}\n",
            "providers.p.timeouts.first_byte: 900s is longer than the total timeout (600s)",
        ),
        (
            "providers:\n  p:\n    type: openai\n    base_url: http://h\n"
            "    headers: {Content-Length: '5'}\n",
            "providers.p.headers.Content-Length: set by the gateway itself; it cannot be "
            "configured",
        ),
        (
            "providers:\n  p: {type: openai, base_url: 'http://u:pw@h', api_key: sk-abcdef}\n",
            "providers.p.base_url: user credentials in the URL would be sent as an "
            "Authorization header, and this provider sends one already (its api_key or "
            "headers.Authorization)",
        ),
        (
            "providers:\n  bad name: {type: openai, base_url: 'http://h'}\n",
            "providers.'bad name': invalid provider name: use letters, digits, '.', '_' and '-'",
        ),
    ],
)
def test_each_problem_is_reported_with_its_path(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(tmp_path, text) == [expected]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
providers:
  openai:
    type: opneai
    base_url: ftp://x
    api_key: ${OPENAI_API_KEY}
models:
  fast:
    - {provider: openai, weight: -1}
    - {provider: opnai}
  gpt-4o-mini:
    deployment: []
telemetry:
  store_content: some
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {})
    assert caught.value.problems == [
        "providers.openai.api_key: environment variable OPENAI_API_KEY is not set",
        "providers.openai.type: unknown provider type 'opneai'; expected one of: openai, anthropic, gemini, azure",
        "providers.openai.base_url: not an http(s) URL: 'ftp://x'",
        "models.fast[0].weight: expected a positive number, got -1",
        "models.fast[1].provider: unknown provider 'opnai' (did you mean 'openai'?)",
        "models.gpt-4o-mini: unknown field 'deployment' (did you mean 'deployments'?)",
        "telemetry.store_content: expected one of full, redacted, none; got 'some'",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert caught.value.source == str(tmp_path / "steerway.yaml")


def test_a_misspelt_required_field_is_reported_once(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "providers:\n  p: {tpye: openai, base_url: 'http://h'}\n")
    assert problems == ["providers.p: unknown field 'tpye' (did you mean 'type'?)"]


def test_missing_file_is_reported_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert check_config(missing) == [f"{missing}: config file not found"]
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(missing)


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    assert check_config(tmp_path) == [f"{tmp_path}: is a directory, not a config file"]


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    text = "providers:\n  openai:\n    base_url: http://h\n    type: openai: extra\n"
    assert problems_of(tmp_path, text) == [
        "line 4, column 17: YAML syntax error: mapping values are not allowed here"
    ]


def test_yaml_syntax_error_does_not_echo_the_line(tmp_path: Path) -> None:
    text = f"providers:\n  openai:\n    api_key: {KEY}: oops\n"
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("line 3, column ")
    assert KEY not in problem


def test_duplicate_keys_are_reported_with_other_problems(tmp_path: Path) -> None:
    text = "models: {}\ntelemetry: {store_content: some}\nmodels: {}\n"
    assert problems_of(tmp_path, text) == [
        "line 3, column 1: duplicate key 'models' (only the last one would count)",
        "telemetry.store_content: expected one of full, redacted, none; got 'some'",
    ]


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = """
providers:
  a: &common {type: openai, base_url: 'http://127.0.0.1:1/v1'}
  b:
    <<: *common
    base_url: http://127.0.0.1:2/v1
"""
    config = load_config(write(tmp_path, text), {})
    assert config.provider("b").base_url == "http://127.0.0.1:2/v1"


def test_python_tags_are_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "limits: !!python/object/apply:os.system ['true']\n")
    assert problem.startswith("line 1, column 9: YAML syntax error")


# --- ${ENV} interpolation ------------------------------------------------------------------


def test_set_variable_is_substituted(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "telemetry:\n  spill_dir: ${DATA}/spill\n"), {"DATA": "/srv/steerway"}
    )
    assert config.telemetry.spill_dir == "/srv/steerway/spill"


def test_unset_variable_names_the_variable_and_the_path(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "telemetry:\n  spill_dir: ${DATA}/spill\n", {}) == [
        "telemetry.spill_dir: environment variable DATA is not set"
    ]


def test_every_unset_variable_in_a_value_is_reported(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "telemetry:\n  spill_dir: ${A}/${B}\n", {}) == [
        "telemetry.spill_dir: environment variable A is not set",
        "telemetry.spill_dir: environment variable B is not set",
    ]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "/tmp/spill"), ({"DATA": ""}, "/tmp/spill"), ({"DATA": "/srv"}, "/srv")],
)
def test_default_applies_when_unset_or_empty(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    config = load_config(write(tmp_path, "telemetry:\n  spill_dir: ${DATA:-/tmp/spill}\n"), environ)
    assert config.telemetry.spill_dir == expected


def test_double_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    text = "providers:\n  p:\n    type: openai\n    base_url: http://h\n"
    text += "    headers: {X-Note: 'costs $$5, not $${HOME}; lone $ stays'}\n"
    config = load_config(write(tmp_path, text), {"HOME": "/root"})
    assert config.provider("p").headers["X-Note"] == "costs $5, not ${HOME}; lone $ stays"


def test_an_empty_api_key_default_means_no_key(tmp_path: Path) -> None:
    text = "providers:\n  p: {type: openai, base_url: 'http://h', api_key: '${KEY:-}'}\n"
    assert load_config(write(tmp_path, text), {}).provider("p").api_key is None


def test_interpolation_cannot_inject_yaml_structure(tmp_path: Path) -> None:
    text = "telemetry:\n  spill_dir: ${DIR}\n"
    config = load_config(write(tmp_path, text), {"DIR": "{store_content: none}\nlimits: {}"})
    assert config.telemetry.spill_dir == "{store_content: none}\nlimits: {}"
    assert config.telemetry.store_content == "full"


def test_numbers_can_come_from_the_environment(tmp_path: Path) -> None:
    text = PROVIDERS + "models:\n  m: [{provider: openai, weight: '${W:-2.5}'}]\n"
    text += "telemetry: {queue_size: '${QUEUE}'}\n"
    config = load_config(write(tmp_path, text), {**ENV, "QUEUE": "5000"})
    assert config.deployments("m")[0].weight == 2.5
    assert config.telemetry.queue_size == 5000


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    text = "providers:\n  ${NAME}: {type: openai, base_url: 'http://h'}\n"
    (problem,) = problems_of(tmp_path, text, {"NAME": "p"})
    assert problem.startswith("providers.${NAME}: invalid provider name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${DATA", "unterminated '${' (write '$$' for a literal dollar sign)"),
        ("${9LIVES}", "invalid environment variable name '9LIVES' in '${...}'"),
        ("${}", "invalid environment variable name '' in '${...}'"),
    ],
)
def test_malformed_references_are_reported(tmp_path: Path, value: str, expected: str) -> None:
    text = f"telemetry:\n  spill_dir: '{value}'\n"
    assert problems_of(tmp_path, text, {"DATA": "x"}) == [f"telemetry.spill_dir: {expected}"]


# --- secrets ------------------------------------------------------------------------------


def test_secret_hides_its_value() -> None:
    secret = Secret(KEY)
    assert secret.reveal() == KEY
    for shown in (str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>40}"):
        assert KEY not in shown
    assert secret == Secret(KEY) and secret != Secret("other")


def test_config_repr_never_shows_secrets(tmp_path: Path) -> None:
    text = (
        PROVIDERS
        + "    headers: {Authorization: 'Bearer ${OPENAI_API_KEY}'}\n"
        + "  with-password: {type: openai, base_url: 'https://user:hunter2@example.com/v1'}\n"
    )
    config = load_config(write(tmp_path, text), ENV)
    assert config.provider("openai").headers["Authorization"] == f"Bearer {KEY}"
    for shown in (repr(config), str(config), repr(config.provider("openai"))):
        assert KEY not in shown
        assert "hunter2" not in shown
    assert "Secret('***')" in repr(config)
    assert "user:***@example.com" in repr(config)
    assert dict(config.provider("openai").__rich_repr__())["headers"] == {"Authorization": "***"}


def test_secret_values_never_reach_error_messages(tmp_path: Path) -> None:
    text = f"""
providers:
  openai:
    type: openai
    base_url: ${{OPENAI_API_KEY}}
    api_key: [{KEY}]
    headers: {{X-Key: {{nested: {KEY}}}}}
  other:
    type: openai
    base_url: https://user:{KEY}@[bad
models:
  m: [{{provider: openai, model: '${{OPENAI_API_KEY}}', weight: '${{OPENAI_API_KEY}}'}}]
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), ENV)
    message = str(caught.value)
    assert len(caught.value.problems) == 5
    assert KEY not in message
    assert KEY not in repr(caught.value)
    assert (
        "providers.openai.base_url: not an http(s) URL: '${OPENAI_API_KEY}' (from the environment)"
        in caught.value.problems
    )
    assert "providers.openai.api_key: expected a string, got a list" in caught.value.problems
    assert "providers.openai.headers.X-Key: expected a string, got a mapping" in message


def test_the_config_cannot_be_encoded_with_its_secrets() -> None:
    config = load_config(EXAMPLE, ENV)
    with pytest.raises(TypeError):
        msgspec.json.encode(config)
    assert copy.deepcopy(config) == config


# --- steering rules -------------------------------------------------------------------------


def test_rules_are_checked_against_the_models_and_providers_of_the_file(tmp_path: Path) -> None:
    text = (
        PROVIDERS
        + "models:\n  small: [{provider: openai, model: gpt-4o-mini}]\n"
        + "rules:\n"
        + "  - id: ok\n    when: {tags: {contains: a}}\n    then: {route: small}\n"
        + "  - id: bad\n    when: {tagz: x, max_tokens: {gt: lots}}\n"
        + "    then: {route: large, deny: {status: 200}}\n"
        + "  - id: direct\n    then: {route: {provider: opnai, model: gpt-4o}}\n"
    )
    assert problems_of(tmp_path, text) == [
        "rules[1].when.tagz: unknown field 'tagz' (did you mean 'tags'?); fields are "
        "model, operation, estimated_input_tokens, message_count, has_tools, has_images, "
        "has_response_format, stream, max_tokens, temperature, user, key, key_name, "
        "workspace, tags, prompt, time.hour, time.weekday, time.time, budget.key_percent, "
        "budget.workspace_percent, metadata.<name>, headers.<name>",
        "rules[1].when.max_tokens.gt: 'max_tokens' is a number, got a string \"lots\"",
        "rules[1].then.route.model: unknown model 'large'",
        "rules[1].then.deny.status: a client error status 400-499, got 200",
        "rules[1].then: 'deny' refuses the request; only 'tag' may go with it",
        "rules[2].then.route.provider: unknown provider 'opnai' (did you mean 'openai'?)",
    ]


def test_rules_must_be_a_list(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "rules: {id: x}\n") == [
        "rules: expected a list of rules, got a mapping"
    ]


def test_valid_rules_are_kept_normalised(tmp_path: Path) -> None:
    text = (
        PROVIDERS
        + "models:\n  small: [{provider: openai, model: gpt-4o-mini}]\n"
        + "rules:\n  - id: r\n    when: {stream: true}\n    then: {cache: {mode: on}}\n"
    )
    config = load_config(write(tmp_path, text), ENV)
    assert config.rules == (
        {
            "id": "r",
            "name": "r",
            "description": "",
            "priority": 100,
            "enabled": True,
            "continue": False,
            "timezone": "UTC",
            "when": {"stream": True},
            "then": {"cache": {"mode": True}},
        },
    )


# --- cache, budgets, rate limits, redis -------------------------------------------------------


def test_limits_sections_have_safe_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), ENV)
    assert config.cache.enabled is True
    assert config.cache.ttl_seconds == 3600
    assert config.cache.on_redis_error == "open"
    assert config.budgets.on_redis_error == "closed"
    assert config.rate_limits.on_redis_error == "open"
    assert config.redis.timeout_ms == 200
    assert config.budgets.end_user == () and dict(config.budgets.buckets) == {}


def test_budgets_are_read_exactly(tmp_path: Path) -> None:
    text = (
        "budgets:\n"
        "  timezone: Europe/Berlin\n"
        "  end_user: {limit_usd: 0.10, window: daily, soft_percent: 80}\n"
        "  buckets:\n"
        "    premium:\n"
        "      - {limit_usd: 100, window: monthly}\n"
        "      - {limit_usd: '1000.005', window: total}\n"
    )
    config = load_config(write(tmp_path, text), ENV)
    assert config.budgets.timezone == "Europe/Berlin"
    (end_user,) = config.budgets.end_user
    assert end_user.limit_usd == Decimal("0.10")
    assert end_user.window == "daily" and end_user.soft_percent == 80.0
    premium = config.budgets.buckets["premium"]
    assert [(b.limit_usd, b.window) for b in premium] == [
        (Decimal("100"), "monthly"),
        (Decimal("1000.005"), "total"),
    ]


def test_a_budget_the_gateway_could_not_hold_exactly_is_refused_when_read(
    tmp_path: Path,
) -> None:
    """Budgets are kept in micro-dollars: a limit with a seventh decimal, or past the largest
    amount, is a problem of the file (as `check-config` reports it), not a refusal at start."""
    text = (
        "budgets:\n"
        "  end_user: {limit_usd: '0.1234567', window: daily}\n"
        "  buckets: {b: {limit_usd: 1e15, window: total}}\n"
    )
    assert problems_of(tmp_path, text) == [
        f"budgets.buckets.b.limit_usd: expected at most {MAX_LIMIT_USD} USD,"
        " got '1000000000000000'",
        "budgets.end_user.limit_usd: at most 6 decimal places (a micro-dollar), got '0.1234567'",
    ]


def test_limits_sections_report_every_problem(tmp_path: Path) -> None:
    text = (
        "cache: {enabled: maybe, ttl_seconds: 0, on_redis_error: retry}\n"
        "budgets:\n"
        "  timezone: Mars/Olympus\n"
        "  end_user: [{limit_usd: -1, window: hourly}, {window: daily}, {limit_usd: 0, window: total}]\n"
        "  buckets: {b: {limit_usd: 5, window: daily, soft_percent: 120}}\n"
        "rate_limits: {on_redis_error: sometimes}\n"
        "redis: {timeout_ms: 0}\n"
    )
    assert problems_of(tmp_path, text) == [
        "budgets.timezone: unknown time zone 'Mars/Olympus'",
        "budgets.buckets.b.soft_percent: expected a percentage between 0 and 100, got 120",
        "budgets.end_user[0].limit_usd: expected a non-negative number of US dollars, got -1",
        "budgets.end_user[0].window: expected one of daily, weekly, monthly, total; got 'hourly'",
        "budgets.end_user[1]: missing required field 'limit_usd'",
        "budgets.end_user[2].limit_usd: a budget must be more than 0 US dollars",
        "cache.enabled: expected true or false, got 'maybe'",
        "cache.ttl_seconds: expected a positive integer, got 0",
        "cache.on_redis_error: expected one of open, closed; got 'retry'",
        "rate_limits.on_redis_error: expected one of open, closed; got 'sometimes'",
        "redis.timeout_ms: expected a positive integer, got 0",
    ]


def test_server_section_defaults_and_values(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, ""), ENV).server
    assert (
        defaults.header_timeout_seconds,
        defaults.body_timeout_seconds,
        defaults.keepalive_timeout_seconds,
        defaults.write_timeout_seconds,
        defaults.max_header_bytes,
        defaults.max_connections,
    ) == (10.0, 60.0, 5.0, 60.0, 65536, 4096)
    text = (
        "server:\n"
        "  header_timeout_seconds: 2.5\n"
        "  body_timeout_seconds: 30\n"
        "  keepalive_timeout_seconds: 0.5\n"
        "  write_timeout_seconds: 15\n"
        "  max_header_bytes: 16384\n"
        "  max_connections: 100\n"
    )
    server = load_config(write(tmp_path, text), ENV).server
    assert (
        server.header_timeout_seconds,
        server.body_timeout_seconds,
        server.keepalive_timeout_seconds,
        server.write_timeout_seconds,
        server.max_header_bytes,
        server.max_connections,
    ) == (2.5, 30.0, 0.5, 15.0, 16384, 100)
    assert load_config(EXAMPLE, ENV).server == defaults


def test_server_section_reports_every_problem(tmp_path: Path) -> None:
    text = (
        "server:\n"
        "  header_timeout_seconds: 0\n"
        "  body_timeout_seconds: -1\n"
        "  keepalive_timeout_seconds: soon\n"
        "  max_connections: 1.5\n"
        "  read_timeout_seconds: 3\n"
    )
    assert problems_of(tmp_path, text) == [
        "server: unknown field 'read_timeout_seconds' (did you mean 'header_timeout_seconds'?)",
        "server.header_timeout_seconds: expected a positive number, got 0",
        "server.body_timeout_seconds: expected a positive number, got -1",
        "server.keepalive_timeout_seconds: expected a positive number, got 'soon'",
        "server.max_connections: expected a positive integer, got 1.5",
    ]


def test_a_rule_may_charge_only_a_bucket_the_file_defines(tmp_path: Path) -> None:
    text = (
        "budgets:\n  buckets:\n    premium: {limit_usd: 10, window: monthly}\n"
        "rules:\n"
        "  - id: ok\n    then: {budget: premium}\n"
        "  - id: typo\n    then: {budget: premiun}\n"
    )
    assert problems_of(tmp_path, text) == [
        "rules[1].then.budget: unknown budget bucket 'premiun' (did you mean 'premium'?) "
        "(buckets are defined under budgets.buckets in the config)"
    ]


# --- metrics and refused requests -------------------------------------------------------------


def test_metrics_stay_on_the_serving_port_and_refused_requests_unstored_by_default(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, ""), ENV)
    assert config.metrics.listen is None and config.metrics.bearer_token is None
    assert config.telemetry.unauthenticated_traces_per_minute == 0


def test_metrics_listener_and_token_are_read(tmp_path: Path) -> None:
    text = (
        "metrics: {listen: '127.0.0.1:9464', bearer_token: '${STEERWAY_METRICS_TOKEN}'}\n"
        "telemetry: {unauthenticated_traces_per_minute: 12}\n"
    )
    token = "metrics-token-4b1d9e"
    config = load_config(write(tmp_path, text), {**ENV, "STEERWAY_METRICS_TOKEN": token})
    assert config.metrics.listen == ("127.0.0.1", 9464)
    assert config.metrics.bearer_token == Secret(token)
    assert token not in repr(config)
    assert config.telemetry.unauthenticated_traces_per_minute == 12
    ipv6 = load_config(write(tmp_path, "metrics: {listen: '[::1]:9100'}\n"), ENV)
    assert ipv6.metrics.listen == ("::1", 9100)


def test_metrics_problems_are_reported_without_the_token(tmp_path: Path) -> None:
    text = (
        "metrics: {listen: '9464', bearer_token: 'has a space-7c2e'}\n"
        "telemetry: {unauthenticated_traces_per_minute: -1}\n"
    )
    problems = problems_of(tmp_path, text)
    assert problems == [
        "metrics.listen: expected host:port, like 127.0.0.1:9464; got '9464'",
        "metrics.bearer_token: must be a non-empty token of printable ASCII, no spaces",
        "telemetry.unauthenticated_traces_per_minute: expected a non-negative integer, got -1",
    ]
    assert not any("7c2e" in problem for problem in problems)
    for listen in (":9464", "localhost:0", "localhost:65536", "[nohost]:80", "host:port"):
        assert problems_of(tmp_path, f"metrics: {{listen: '{listen}'}}\n") == [
            f"metrics.listen: expected host:port, like 127.0.0.1:9464; got '{listen}'"
        ]


def test_an_empty_metrics_token_is_refused_not_taken_as_none(tmp_path: Path) -> None:
    text = "metrics: {bearer_token: '${STEERWAY_METRICS_TOKEN:-}'}\n"
    assert problems_of(tmp_path, text) == [
        "metrics.bearer_token: must be a non-empty token of printable ASCII, no spaces"
    ]
    assert problems_of(tmp_path, "metrics: {bearer_token: '${STEERWAY_METRICS_TOKEN}'}\n") == [
        "metrics.bearer_token: environment variable STEERWAY_METRICS_TOKEN is not set"
    ]


def test_otlp_ingest_limits_have_defaults_values_and_problems(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, ""), ENV).otlp_ingest
    assert (
        defaults.max_body_bytes,
        defaults.max_spans,
        defaults.max_attribute_length,
        defaults.max_span_age_seconds,
        defaults.max_future_seconds,
    ) == (8 * 1024 * 1024, 2000, 1024 * 1024, 7 * 24 * 3600, 300)
    text = (
        "otlp_ingest: {max_body_bytes: 1000, max_spans: 5, max_attribute_length: 50,"
        " max_span_age_seconds: 60, max_future_seconds: 0}\n"
    )
    config = load_config(write(tmp_path, text), ENV).otlp_ingest
    assert (
        config.max_body_bytes,
        config.max_spans,
        config.max_attribute_length,
        config.max_span_age_seconds,
        config.max_future_seconds,
    ) == (1000, 5, 50, 60, 0)
    assert problems_of(
        tmp_path, "otlp_ingest: {max_spans: 0, max_future_seconds: -1, spans: 3}\n"
    ) == [
        "otlp_ingest: unknown field 'spans' (did you mean 'max_spans'?)",
        "otlp_ingest.max_spans: expected a positive integer, got 0",
        "otlp_ingest.max_future_seconds: expected a non-negative integer, got -1",
    ]
