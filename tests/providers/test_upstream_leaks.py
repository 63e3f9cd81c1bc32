"""What an upstream failure may say: a generic reason for a failed connection (never the host,
port or URL), and nothing of the provider's configured secrets (the API key, every configured
header value, a password in the base URL), whatever the provider echoes back. Every adapter,
over real sockets."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from providers.anthropic import AnthropicAdapter
from providers.azure import AzureOpenAIAdapter
from providers.base import ProviderAdapter
from providers.errors import UpstreamFailure
from providers.gemini import GeminiAdapter
from providers.openai import OpenAIAdapter
from providers.secret_scrubber import scrubber_for
from providers.upstream import UpstreamClient
from tests.echo_upstream import EchoUpstream

API_KEY = "sk-leak-key-" + secrets.token_hex(8)
HEADER_SECRET = "hdr-secret-" + secrets.token_hex(8)
BEARER_SECRET = "tok-secret-" + secrets.token_hex(8)
URL_USER = "urluser" + secrets.token_hex(4)
URL_PASSWORD = "urlpass-" + secrets.token_hex(8)
HEADERS = {"X-Org-Token": HEADER_SECRET, "X-Upstream-Auth": f"Bearer {BEARER_SECRET}"}
SECRETS = (API_KEY, HEADER_SECRET, BEARER_SECRET, URL_PASSWORD)
UNREACHABLE_HOST = "127.41.83.7"  # loopback: nothing listens there


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient()
    await upstream.start()
    yield upstream
    await upstream.close()


def make_adapter(kind: str, base_url: str, client: UpstreamClient) -> ProviderAdapter:
    common: dict[str, Any] = {
        "base_url": base_url,
        "api_key": API_KEY,
        "client": client,
        "headers": dict(HEADERS),
        "connect_timeout": 2.0,
    }
    if kind == "anthropic":
        return AnthropicAdapter(kind, **common)
    if kind == "gemini":
        return GeminiAdapter(kind, **common)
    if kind == "azure":
        return AzureOpenAIAdapter(kind, api_version="2024-10-21", **common)
    return OpenAIAdapter(kind, **common)


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")


async def failure_of(adapter: ProviderAdapter, *, stream: bool = False) -> UpstreamFailure:
    payload = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    body = adapter.encode_chat(payload, "some-model", stream=stream)
    with pytest.raises(UpstreamFailure) as caught:
        response = await adapter.send("chat", body, provider_model="some-model", stream=stream)
        if stream:
            async for _ in adapter.stream_events(response, "public"):
                pass
        else:
            adapter.parse_chat(await adapter.read_body(response), "public")
    return caught.value


def assert_no_secret(text: str) -> None:
    for value in SECRETS:
        assert value not in text
    basic = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
    assert basic not in text


KINDS = ["openai", "azure", "anthropic", "gemini"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_an_upstream_echoing_what_it_was_sent_reveals_no_configured_secret(
    echo: EchoUpstream, client: UpstreamClient, kind: str, stream: bool
) -> None:
    # An OpenAI provider sends its key as the Authorization header, which URL credentials
    # would be too: the config refuses both together.
    base_url = echo.url + "/v1" if kind == "openai" else with_credentials(echo.url + "/v1")
    adapter = make_adapter(kind, base_url, client)
    calls = echo.calls
    failure = await failure_of(adapter, stream=stream)
    assert echo.calls == calls + 1
    assert failure.kind == "http"
    assert "rejected. You sent" in failure.message  # the provider's own words are kept
    assert "x-org-token: ***" in failure.message.lower()
    assert_no_secret(failure.message)
    assert_no_secret(str(failure))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((UNREACHABLE_HOST, 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreachable_provider_gives_a_generic_reason(
    client: UpstreamClient, kind: str
) -> None:
    port = closed_port()
    adapter = make_adapter(kind, f"http://{UNREACHABLE_HOST}:{port}/v1", client)
    failure = await failure_of(adapter)
    assert failure.kind == "connect"
    assert failure.message == "cannot connect (connection refused)"


async def test_an_unknown_host_gives_a_generic_reason(client: UpstreamClient) -> None:
    adapter = make_adapter("openai", "http://no-such-host.invalid/v1", client)
    failure = await failure_of(adapter)
    assert failure.kind == "connect"
    assert failure.message == "cannot connect (host name not found)"


def test_the_scrubber_replaces_every_configured_secret_and_leaves_the_rest() -> None:
    scrub = scrubber_for(
        api_key=API_KEY,
        headers={**HEADERS, "X-Feature": "on"},
        base_url=f"https://{URL_USER}:{URL_PASSWORD}@example.test/v1?key={HEADER_SECRET}x",
    )
    text = (
        f"key {API_KEY} header {HEADER_SECRET} token {BEARER_SECRET} url {URL_PASSWORD} "
        f"query {HEADER_SECRET}x feature on Bearer whatever"
    )
    assert scrub(text) == "key *** header *** token *** url *** query *** feature on ***"


async def test_tls_and_a_dropped_connection_give_generic_reasons(
    echo: EchoUpstream, client: UpstreamClient
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        over_tls = make_adapter("openai", echo.url.replace("http://", "https://") + "/v1", client)
        assert (await failure_of(over_tls)).message == "cannot connect (TLS error)"
        dropped = make_adapter("openai", f"http://127.0.0.1:{port}/v1", client)
        failure = await failure_of(dropped)
        assert failure.message == "cannot connect (the provider closed the connection)"
    finally:
        server.close()
        await server.wait_closed()
