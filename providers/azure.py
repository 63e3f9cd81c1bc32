"""The Azure OpenAI adapter: OpenAI's wire format at Azure's deployment URLs.

A call goes to `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`
(or `/embeddings`), where the deployment is the provider model, with the key in an `api-key`
header. Bodies, answers and streams are OpenAI's and handled by `OpenAIAdapter`.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from providers.http_client import Endpoint, Timeouts, UpstreamResponse, endpoint
from providers.openai import OPERATION_PATHS, OpenAIAdapter
from providers.secret_scrubber import scrubber_for
from providers.upstream import UpstreamClient


class AzureOpenAIAdapter(OpenAIAdapter):
    type = "azure"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        api_version: str,
        client: UpstreamClient,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        first_byte_timeout: float = 60.0,
        total_timeout: float = 600.0,
    ) -> None:
        if not api_version:
            raise ValueError("an Azure OpenAI provider needs an api_version")
        super().__init__(
            name,
            base_url=base_url,
            api_key=None,
            client=client,
            headers=headers,
            connect_timeout=connect_timeout,
            first_byte_timeout=first_byte_timeout,
            total_timeout=total_timeout,
        )
        self._api_key = api_key
        self.scrub = scrubber_for(api_key=api_key, headers=headers or {}, base_url=base_url)
        if api_key:
            self._set_headers(**{"api-key": api_key})
        self.api_version = api_version
        self._base = base_url.rstrip("/")
        self._deployment_urls: dict[tuple[str, str], Endpoint] = {}

    def deployment_url(self, operation: str, deployment: str) -> Endpoint:
        """The endpoint of one call, built once per (deployment, operation)."""
        key = (deployment, operation)
        url = self._deployment_urls.get(key)
        if url is None:
            path = OPERATION_PATHS[operation]
            query = urlencode({"api-version": self.api_version})
            url = endpoint(
                f"{self._base}/openai/deployments/{quote(deployment, safe='')}{path}?{query}"
            )
            self._deployment_urls[key] = url
        return url

    def url(self, operation: str) -> str:
        raise TypeError("Azure URLs depend on the deployment; use deployment_url()")

    async def send(
        self,
        operation: str,
        body: bytes,
        *,
        provider_model: str,
        stream: bool = False,
        traceparent: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        url = self.deployment_url(operation, provider_model)
        return await self.post(url, body, self._headers, traceparent, timeouts)
