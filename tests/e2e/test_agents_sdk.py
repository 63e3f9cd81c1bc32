"""The OpenAI Agents SDK (`openai-agents`) running real agents against the gateway's Responses
API, on SQLite and Postgres, with the mock provider behind it.

The SDK's tracing export is switched off and every socket the test process opens is checked:
nothing may leave 127.0.0.1. The mock is a scripted model: it calls the first tool whenever a
request offers tools, so a run that should end with text after its tool ran is told, once the
tool has run, to answer with a given text (`mock.content` through `ModelSettings.extra_body`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import agents
import pytest
from agents import (
    Agent,
    ItemHelpers,
    ModelSettings,
    OpenAIResponsesModel,
    RunConfig,
    RunContextWrapper,
    RunHooks,
    Runner,
    Tool,
    TResponseInputItem,
    function_tool,
)
from agents.items import HandoffOutputItem, MessageOutputItem, ToolCallItem, ToolCallOutputItem
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI, NotFoundError
from openai.types.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseTextDeltaEvent,
)
from pydantic import BaseModel

from providers.mock_server import reply_text
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_keys import NewKey, create_key

agents.set_tracing_disabled(True)
NO_TRACING = RunConfig(tracing_disabled=True, trace_include_sensitive_data=False)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse, and remember, any connection or name lookup for a host other than loopback."""
    refused: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(host: Any) -> None:
        if _is_loopback(host):
            return
        refused.append(str(host))
        raise ConnectionRefusedError(f"the agents tests stay on loopback, not {host!r}")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family != socket.AF_UNIX:
            check(address[0])
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != socket.AF_UNIX:
            check(address[0])
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield refused
    assert refused == [], f"something tried to reach {refused}"


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider),
        tmp_path_factory.mktemp("agents"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def key(gateway: GatewayProcess) -> NewKey:
    """A key of its own per test, so the rows a test reads are its own."""
    return create_key(gateway, f"agents-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def client(gateway: GatewayProcess, key: NewKey) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=gateway.base_url, api_key=key.plaintext, max_retries=0
    ) as openai_client:
        yield openai_client


def _model(client: AsyncOpenAI) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model="mock-gpt", openai_client=client)


class WeatherStation:
    """A function tool that remembers its calls and answers with a reading of its own."""

    def __init__(self) -> None:
        self.reading = f"reading-{uuid.uuid4().hex[:8]}"
        self.cities: list[str] = []

    def tool(self) -> Tool:
        @function_tool
        def get_weather(city: Literal["Paris", "Oslo"]) -> str:
            """The weather in a city."""
            self.cities.append(city)
            return f"sunny in {city} ({self.reading})"

        return get_weather


class AnswerOnceToolsRan(RunHooks[Any]):
    """After a tool ran, the agent's next turns ask the mock for `text` instead of a tool call."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        agent.model_settings = dataclasses.replace(
            agent.model_settings, extra_body={"mock": {"content": self.text}}
        )


def _rows(gateway: GatewayProcess, sql: str, count: int, **params: Any) -> list[dict[str, Any]]:
    rows = gateway.database.wait_rows(sql, count=count, **params)
    assert len(rows) == count, rows
    return rows


async def _interactions(gateway: GatewayProcess, key: NewKey, count: int) -> list[dict[str, Any]]:
    """The key's recorded model calls, oldest first, once the recorder has written `count`."""
    return await asyncio.to_thread(
        _rows,
        gateway,
        "SELECT i.operation, i.stream, i.requested_model, i.completion_tokens, t.route,"
        " t.method, t.http_status FROM ai_interactions i JOIN traces t ON t.trace_id = i.trace_id"
        " WHERE i.api_key_id = :k ORDER BY i.started_at",
        count,
        k=key.key_id,
    )


async def _stored(gateway: GatewayProcess, response_id: str) -> dict[str, Any]:
    (row,) = await asyncio.to_thread(
        _rows,
        gateway,
        "SELECT workspace_id, model FROM stored_responses WHERE response_id = :r",
        1,
        r=response_id,
    )
    return row


async def test_an_agent_answers(
    gateway: GatewayProcess, mock_provider: MockProcess, client: AsyncOpenAI, key: NewKey
) -> None:
    agent = Agent(name="Greeter", instructions="Greet briefly.", model=_model(client))
    result = await Runner.run(agent, "hello from an agent", run_config=NO_TRACING)

    assert result.final_output == reply_text("hello from an agent", 8)
    (response,) = result.raw_responses
    assert response.response_id is not None and response.response_id.startswith("resp_")
    assert response.usage.output_tokens == 8 and response.usage.input_tokens > 0
    sent = mock_provider.last_request()["body"]
    assert sent["model"] == "mock-gpt"
    assert sent["messages"] == [
        {"role": "system", "content": "Greet briefly."},
        {"role": "user", "content": "hello from an agent"},
    ]

    (row,) = await _interactions(gateway, key, 1)
    assert row["operation"] == "responses" and not row["stream"]
    assert row["route"] == "/v1/responses" and row["method"] == "POST"
    assert row["http_status"] == 200 and row["completion_tokens"] == 8
    stored = await _stored(gateway, response.response_id)
    assert stored["workspace_id"] == key.workspace_id and stored["model"] == "mock-gpt"


@pytest.mark.parametrize("chaining", ["input_items", "previous_response_id"])
async def test_an_agent_calls_a_function_tool_and_answers_with_its_output(
    gateway: GatewayProcess,
    mock_provider: MockProcess,
    client: AsyncOpenAI,
    key: NewKey,
    chaining: str,
) -> None:
    station = WeatherStation()
    agent = Agent(
        name="Forecaster",
        instructions="Use the tool, then answer.",
        model=_model(client),
        tools=[station.tool()],
    )
    final = "It is sunny in Paris."
    result = await Runner.run(
        agent,
        "What is the weather in Paris?",
        hooks=AnswerOnceToolsRan(final),
        run_config=NO_TRACING,
        auto_previous_response_id=chaining == "previous_response_id",
    )

    assert station.cities == ["Paris"]
    assert result.final_output == final
    kinds = [type(item) for item in result.new_items]
    assert kinds == [ToolCallItem, ToolCallOutputItem, MessageOutputItem]
    call, output, message = result.new_items
    assert isinstance(call, ToolCallItem) and getattr(call.raw_item, "name", None) == "get_weather"
    assert isinstance(output, ToolCallOutputItem)
    assert output.output == f"sunny in Paris ({station.reading})"
    assert isinstance(message, MessageOutputItem)
    assert ItemHelpers.text_message_output(message) == final

    # What reached the model on the second turn: a plain chat request with the call and the
    # tool's output, none of the Responses fields the SDK sent (`include`, ...).
    body = mock_provider.last_request()["body"]
    assert set(body) == {"model", "messages", "stream", "tools", "mock"}
    assert body["tools"][0]["function"]["strict"] is True
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "Use the tool, then answer."}
    assert messages[1] == {"role": "user", "content": "What is the weather in Paris?"}
    (tool_call,) = messages[2]["tool_calls"]
    assert messages[2]["role"] == "assistant"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": tool_call["id"],
        "content": f"sunny in Paris ({station.reading})",
    }
    assert len(messages) == 4

    first, second = result.raw_responses
    assert first.response_id and second.response_id and first.response_id != second.response_id
    continued = await client.responses.retrieve(second.response_id)
    expected_previous = first.response_id if chaining == "previous_response_id" else None
    assert continued.previous_response_id == expected_previous
    assert continued.output_text == final

    turns = await _interactions(gateway, key, 2)
    assert [row["operation"] for row in turns] == ["responses", "responses"]
    assert {(row["route"], row["method"]) for row in turns} == {("/v1/responses", "POST")}


async def test_a_streamed_run_yields_text_deltas(
    gateway: GatewayProcess, mock_provider: MockProcess, client: AsyncOpenAI, key: NewKey
) -> None:
    agent = Agent(name="Streamer", instructions="Stream it.", model=_model(client))
    result = Runner.run_streamed(agent, "stream me a story", run_config=NO_TRACING)
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
    ]

    expected = reply_text("stream me a story", 8)
    assert len(deltas) == 8 and "".join(deltas) == expected
    assert result.is_complete and result.final_output == expected
    (response,) = result.raw_responses
    assert response.response_id is not None and response.usage.output_tokens == 8
    assert mock_provider.last_request()["body"]["stream"] is True

    (row,) = await _interactions(gateway, key, 1)
    assert row["operation"] == "responses" and bool(row["stream"])
    assert row["route"] == "/v1/responses" and row["completion_tokens"] == 8
    stored = await _stored(gateway, response.response_id)
    assert stored["workspace_id"] == key.workspace_id


async def test_a_streamed_run_with_a_tool_through_the_default_model_provider(
    gateway: GatewayProcess, mock_provider: MockProcess, client: AsyncOpenAI, key: NewKey
) -> None:
    """The SDK's own provider (a model given by name) speaks the Responses API by default."""
    station = WeatherStation()
    agent = Agent(
        name="Forecaster",
        instructions="Use the tool, then answer.",
        model="mock-gpt",
        tools=[station.tool()],
    )
    final = "Oslo looks sunny today."
    config = dataclasses.replace(NO_TRACING, model_provider=OpenAIProvider(openai_client=client))
    result = Runner.run_streamed(
        agent, "Weather in Oslo?", hooks=AnswerOnceToolsRan(final), run_config=config
    )
    raw = [
        event.data async for event in result.stream_events() if event.type == "raw_response_event"
    ]

    assert station.cities == ["Paris"]
    arguments = "".join(
        e.delta for e in raw if isinstance(e, ResponseFunctionCallArgumentsDeltaEvent)
    )
    assert json.loads(arguments) == {"city": "Paris"}
    text = "".join(e.delta for e in raw if isinstance(e, ResponseTextDeltaEvent))
    assert text == final == result.final_output
    assert [e.type for e in raw].count("response.completed") == 2
    body = mock_provider.last_request()["body"]
    assert set(body) == {"model", "messages", "stream", "stream_options", "tools", "mock"}
    messages = body["messages"]
    assert messages[-1]["role"] == "tool"
    assert messages[-1]["content"] == f"sunny in Paris ({station.reading})"

    turns = await _interactions(gateway, key, 2)
    assert [(row["operation"], bool(row["stream"])) for row in turns] == [("responses", True)] * 2


async def test_a_handoff_passes_the_conversation_to_another_agent(
    mock_provider: MockProcess, client: AsyncOpenAI, gateway: GatewayProcess, key: NewKey
) -> None:
    specialist = Agent(
        name="Specialist", instructions="You are the specialist.", model=_model(client)
    )
    triage = Agent(
        name="Triage",
        instructions="Hand every question on.",
        model=_model(client),
        handoffs=[specialist],
    )
    result = await Runner.run(triage, "a question for the specialist", run_config=NO_TRACING)

    assert result.last_agent is specialist
    assert any(isinstance(item, HandoffOutputItem) for item in result.new_items)
    assert result.final_output == reply_text("a question for the specialist", 8)
    messages = mock_provider.last_request()["body"]["messages"]
    assert messages[0] == {"role": "system", "content": "You are the specialist."}
    assert messages[1] == {"role": "user", "content": "a question for the specialist"}
    assert messages[2]["tool_calls"][0]["function"]["name"] == "transfer_to_specialist"
    assert (
        messages[3]["role"] == "tool"
        and messages[3]["tool_call_id"] == (messages[2]["tool_calls"][0]["id"])
    )
    assert "tools" not in mock_provider.last_request()["body"]
    assert len(await _interactions(gateway, key, 2)) == 2


class Forecast(BaseModel):
    city: Literal["Paris", "Oslo"]
    celsius: int


async def test_a_structured_output_type_comes_back_parsed(
    mock_provider: MockProcess, client: AsyncOpenAI
) -> None:
    agent = Agent(name="Reporter", model=_model(client), output_type=Forecast)
    result = await Runner.run(agent, "forecast please", run_config=NO_TRACING)

    assert result.final_output == Forecast(city="Paris", celsius=0)
    response_format = mock_provider.last_request()["body"]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["required"] == ["city", "celsius"]


def test_the_guard_keeps_the_test_process_on_loopback(loopback_only: list[str]) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("api.openai.com", 443), timeout=1)
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("192.0.2.1", 443))
    assert loopback_only == ["api.openai.com", "192.0.2.1"]
    loopback_only.clear()


@pytest.mark.parametrize("carried_by", ["previous_response_id", "to_input_list"])
async def test_a_second_run_continues_the_first(
    mock_provider: MockProcess, client: AsyncOpenAI, carried_by: str
) -> None:
    agent = Agent(name="Memory", instructions="Remember.", model=_model(client))
    first = await Runner.run(agent, "my name is Ada", run_config=NO_TRACING)
    if carried_by == "previous_response_id":
        second = await Runner.run(
            agent,
            "what is my name",
            previous_response_id=first.last_response_id,
            run_config=NO_TRACING,
        )
    else:
        question: TResponseInputItem = {"role": "user", "content": "what is my name"}
        turn = [*first.to_input_list(), question]
        second = await Runner.run(agent, turn, run_config=NO_TRACING)

    assert second.final_output == reply_text("what is my name", 8)
    assert mock_provider.last_request()["body"]["messages"] == [
        {"role": "system", "content": "Remember."},
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": first.final_output},
        {"role": "user", "content": "what is my name"},
    ]


async def test_model_settings_reach_the_provider(
    gateway: GatewayProcess, mock_provider: MockProcess, client: AsyncOpenAI, key: NewKey
) -> None:
    settings = ModelSettings(
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        truncation="auto",
        metadata={"team": "agents"},
        store=False,
        extra_headers={"x-steerway-tags": "agents-sdk"},
    )
    agent = Agent(name="Tuned", model=_model(client), model_settings=settings)
    result = await Runner.run(agent, "settings check please", run_config=NO_TRACING)

    assert result.final_output == reply_text("settings check please", 8)
    sent = mock_provider.last_request()["body"]
    assert (sent["temperature"], sent["top_p"], sent["max_completion_tokens"]) == (0.3, 0.9, 64)
    assert "metadata" not in sent and "truncation" not in sent and "store" not in sent
    (response,) = result.raw_responses
    assert response.response_id is not None
    with pytest.raises(NotFoundError):
        await client.responses.retrieve(response.response_id)
    (tags,) = await asyncio.to_thread(
        _rows, gateway, "SELECT tags FROM traces WHERE api_key_id = :k", 1, k=key.key_id
    )
    assert "agents-sdk" in tags["tags"]
    (row,) = await _interactions(gateway, key, 1)
    assert row["operation"] == "responses"
