"""The Azure OpenAI adapter over real HTTP against the mock provider's Azure routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from providers.azure import AzureOpenAIAdapter
from providers.errors import UpstreamFailure
from providers.mock_server import MockServer, MockSettings, reply_text, start_mock_server
from providers.openai_format import event_data, read_chunk
from providers.upstream import UpstreamClient

API_KEY = "azure-test-key-5f1c0d9e8a7b6c5d4e3f2a1b"
API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-prod"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[MockServer]:
    mock = await start_mock_server(MockSettings(chunks=5, require_api_key=API_KEY))
    yield mock
    await mock.close()


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    await client.start()
    yield client
    await client.close()


def make_adapter(
    server: MockServer, client: UpstreamClient, **overrides: Any
) -> AzureOpenAIAdapter:
    options: dict[str, Any] = {
        "base_url": server.url + "/",
        "api_key": API_KEY,
        "api_version": API_VERSION,
        "client": client,
    }
    options.update(overrides)
    return AzureOpenAIAdapter("azure-mock", **options)


@pytest.fixture
def adapter(server: MockServer, upstream: UpstreamClient) -> AzureOpenAIAdapter:
    return make_adapter(server, upstream)


def test_deployment_urls_carry_the_api_version_and_no_key(upstream: UpstreamClient) -> None:
    adapter = AzureOpenAIAdapter(
        "a",
        base_url="https://contoso.openai.azure.com/",
        api_key=API_KEY,
        api_version="2024-10-21",
        client=upstream,
    )
    chat = adapter.deployment_url("chat", "gpt 4o/eu")
    assert str(chat) == (
        "https://contoso.openai.azure.com/openai/deployments/gpt%204o%2Feu/chat/completions"
        "?api-version=2024-10-21"
    )
    embeddings = adapter.deployment_url("embeddings", "ada")
    assert embeddings.target == b"/openai/deployments/ada/embeddings?api-version=2024-10-21"
    assert adapter.deployment_url("chat", "gpt 4o/eu") is chat
    assert API_KEY not in str(chat) + str(embeddings)
    assert adapter.type == "azure"


def test_an_api_version_is_required(upstream: UpstreamClient) -> None:
    with pytest.raises(ValueError, match="api_version"):
        AzureOpenAIAdapter("a", base_url="https://x", api_key="k", api_version="", client=upstream)


async def test_chat_reaches_the_deployment_with_the_api_key_header(
    adapter: AzureOpenAIAdapter, server: MockServer
) -> None:
    body = adapter.encode_chat({"model": "public", "messages": HELLO}, DEPLOYMENT, stream=False)
    response = await adapter.send("chat", body, provider_model=DEPLOYMENT)
    result = adapter.parse_chat(await adapter.read_body(response), "public")
    answer = json.loads(result.body)
    assert answer["choices"][0]["message"]["content"] == reply_text("hello there", 5)
    assert result.usage.completion_tokens == 5
    recorded = server.last_request
    assert recorded is not None
    assert recorded["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert recorded["headers"]["api-key"] == API_KEY
    assert recorded["body"]["model"] == DEPLOYMENT


async def test_stream_is_openai_chunks_with_usage(adapter: AzureOpenAIAdapter) -> None:
    payload = {"model": "public", "messages": HELLO, "stream": True}
    body = adapter.encode_chat(payload, DEPLOYMENT, stream=True)
    response = await adapter.send("chat", body, provider_model=DEPLOYMENT, stream=True)
    events: list[bytes] = []
    async for group in adapter.stream_events(response, "public"):
        events += group
    assert events[-1] == b"data: [DONE]"
    chunks = [read_chunk(data) for e in events[:-1] if (data := event_data(e)) is not None]
    assert "".join(t for c in chunks for _, t in c.contents) == reply_text("hello there", 5)
    assert chunks[-1].usage_only and chunks[-1].usage is not None


async def test_embeddings_reach_the_deployment(
    adapter: AzureOpenAIAdapter, server: MockServer
) -> None:
    body = adapter.encode_embeddings({"model": "e", "input": ["a", "b"]}, "ada-002")
    response = await adapter.send("embeddings", body, provider_model="ada-002")
    result = adapter.parse_embeddings(await adapter.read_body(response), "e")
    assert len(json.loads(result.body)["data"]) == 2
    assert result.usage.prompt_tokens == 2
    assert server.last_request is not None
    assert server.last_request["path"] == "/openai/deployments/ada-002/embeddings"


async def test_rate_limits_keep_retry_after(adapter: AzureOpenAIAdapter) -> None:
    payload = {"model": "p", "messages": HELLO, "mock": {"error": 429, "retry_after": 1.5}}
    body = adapter.encode_chat(payload, DEPLOYMENT, stream=False)
    with pytest.raises(UpstreamFailure) as caught:
        await adapter.send("chat", body, provider_model=DEPLOYMENT)
    assert caught.value.status == 429
    assert (caught.value.retry_after, caught.value.retry_after_ms) == ("1.5", "1500")


async def test_a_wrong_key_is_401_and_never_echoed(
    server: MockServer, upstream: UpstreamClient
) -> None:
    wrong = "azure-wrong-key-0000000000000000000"
    adapter = make_adapter(server, upstream, api_key=wrong)
    body = adapter.encode_chat({"model": "p", "messages": HELLO}, DEPLOYMENT, stream=False)
    with pytest.raises(UpstreamFailure) as caught:
        await adapter.send("chat", body, provider_model=DEPLOYMENT)
    assert caught.value.status == 401
    assert wrong not in repr(vars(caught.value))


async def test_mock_route_insists_on_azure_conventions(server: MockServer) -> None:
    url = f"{server.url}/openai/deployments/{DEPLOYMENT}/chat/completions"
    body = {"model": "p", "messages": HELLO}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers={"api-key": API_KEY}) as missing:
            assert missing.status == 404
        bearer = {"Authorization": f"Bearer {API_KEY}"}
        params = {"api-version": API_VERSION}
        async with session.post(url, json=body, headers=bearer, params=params) as openai_style:
            assert openai_style.status == 401
        bad_version = {"api-version": "latest"}
        async with session.post(
            url, json=body, headers={"api-key": API_KEY}, params=bad_version
        ) as unsupported:
            assert unsupported.status == 400
