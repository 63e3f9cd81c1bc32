"""Legacy text completions and model retrieval with the official openai SDK, on SQLite and
Postgres, against the mock provider through an OpenAI-type and an Anthropic-type deployment."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.conftest import GatewayProcess, MockProcess
from tests.e2e.inbound_gateway import inbound_gateway_fixture

gateway = inbound_gateway_fixture(
    "completions",
    rules=[
        {
            "id": "no-legacy-for-sonnet",
            "when": {"all": [{"operation": "completions"}, {"model": "sonnet"}]},
            "then": {"cap": {"max_tokens": 3}},
        }
    ],
)


@pytest.mark.parametrize("model", ["mock-gpt", "sonnet"])
def test_a_text_completion_is_answered_and_recorded(gateway: GatewayProcess, model: str) -> None:
    raw = gateway.client().completions.with_raw_response.create(
        model=model, prompt="complete this sentence", max_tokens=6
    )
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.model == model
    assert completion.choices[0].text.startswith("Echo:")
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    trace_id = raw.headers["x-steerway-trace-id"]
    (row,) = gateway.database.wait_rows(
        "SELECT operation, completion_tokens FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert row["operation"] == "completions"
    assert row["completion_tokens"] == completion.usage.completion_tokens
    (trace,) = gateway.database.wait_rows(
        "SELECT route FROM traces WHERE trace_id = :t", t=trace_id
    )
    assert trace["route"] == "/v1/completions"


def test_rules_see_the_completions_operation(gateway: GatewayProcess) -> None:
    capped = gateway.client().completions.create(model="sonnet", prompt="hello", max_tokens=50)
    assert capped.usage is not None and capped.usage.completion_tokens == 3
    chat = gateway.client().chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "hello"}], max_tokens=5
    )
    assert chat.usage is not None and chat.usage.completion_tokens == 5


def test_prompt_stop_and_defaults_are_translated(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    gateway.client().completions.create(
        model="mock-gpt", prompt=["only one prompt"], stop=["\n"], temperature=0.2
    )
    sent = mock_provider.last_request()["body"]
    assert sent["messages"] == [{"role": "user", "content": "only one prompt"}]
    assert sent["stop"] == ["\n"]
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 16


def test_a_streamed_completion_sends_text_completion_chunks(gateway: GatewayProcess) -> None:
    client = gateway.client()
    whole = client.completions.create(model="mock-gpt", prompt="stream this", max_tokens=8)
    chunks = list(
        client.completions.create(
            model="mock-gpt",
            prompt="stream this",
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(chunk.object == "text_completion" for chunk in chunks)
    text = "".join(choice.text for chunk in chunks for choice in chunk.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    finishes = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finishes == [whole.choices[0].finish_reason]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"suffix": "end"}, "suffix"),
    ],
)
def test_unsupported_options_are_refused(
    gateway: GatewayProcess, params: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().completions.create(model="mock-gpt", prompt="x", **params)  # type: ignore[call-overload]
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


def test_bad_prompts_and_unknown_models(gateway: GatewayProcess) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="mock-gpt", prompt=["one", "two"])
    assert caught.value.param == "prompt"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="mock-gpt", prompt=[1, 2, 3])
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="no-such-model", prompt="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        gateway.client("sk-wrong").completions.create(model="mock-gpt", prompt="x")


def test_a_model_is_retrieved(gateway: GatewayProcess) -> None:
    client = gateway.client()
    model = client.models.retrieve("mock-gpt")
    assert model.id == "mock-gpt" and model.object == "model"
    assert model.owned_by == "steerway"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        gateway.client("sk-wrong").models.retrieve("mock-gpt")
    with httpx.Client(timeout=10) as http:
        refused = http.post(
            f"{gateway.base_url}/models/mock-gpt",
            headers={"Authorization": f"Bearer {gateway.master_key}"},
        )
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "method_not_allowed"
