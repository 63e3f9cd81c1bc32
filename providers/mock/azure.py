"""The mock provider's Azure OpenAI routes: `/openai/deployments/{deployment}/...`.

They answer exactly like the OpenAI routes, after checking what Azure requires: an
`api-version` query parameter (a date, optionally `-preview`) and, when the mock requires a key,
an `api-key` header. A request with an `Authorization` header is refused, so a test sees at once
when an Azure client sends OpenAI's header instead. The deployment in the URL is the model that
`mock.fail_models` and the `requests_by_model` counter go by.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from providers.mock.errors import error_response

if TYPE_CHECKING:
    from providers.mock.app import MockProvider

AZURE_CHAT_PATH = "/openai/deployments/{deployment}/chat/completions"
AZURE_EMBEDDINGS_PATH = "/openai/deployments/{deployment}/embeddings"
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")


class DeploymentHandler(Protocol):
    """An OpenAI route handler told which deployment the URL names."""

    def __call__(
        self, request: web.Request, *, url_model: str | None = None
    ) -> Awaitable[web.StreamResponse]: ...


class AzureDeployments:
    """Wraps the OpenAI handlers of the same mock app with Azure's checks."""

    def __init__(self, provider: MockProvider) -> None:
        self.provider = provider

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._forward(request, self.provider.chat_completions)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._forward(request, self.provider.embeddings)

    async def _forward(
        self, request: web.Request, handler: DeploymentHandler
    ) -> web.StreamResponse:
        version = request.query.get("api-version")
        if not version:
            return error_response(
                404, "Resource not found: the api-version query parameter is missing."
            )
        if not _API_VERSION.fullmatch(version):
            return error_response(400, f"API version not supported: {version}")
        expected = self.provider.settings.require_api_key
        headers = request.headers.copy()
        if "Authorization" in headers:
            return error_response(401, "Azure OpenAI takes the key in the 'api-key' header.")
        if expected is not None:
            given = request.headers.get("api-key", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return error_response(
                    401,
                    "Access denied due to invalid subscription key or wrong API endpoint.",
                    code="401",
                )
            headers["Authorization"] = f"Bearer {expected}"
        deployment = request.match_info["deployment"]
        return await handler(request.clone(headers=headers), url_model=deployment)


def add_azure_routes(app: web.Application, provider: MockProvider) -> None:
    deployments = AzureDeployments(provider)
    app.router.add_post(AZURE_CHAT_PATH, deployments.chat_completions)
    app.router.add_post(AZURE_EMBEDDINGS_PATH, deployments.embeddings)
