"""The mock provider's public entry points.

    server = await start_mock_server(MockSettings(chunks=4))
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
    ...
    await server.close()

See docs/mock-provider.md for the endpoints and the per-request `mock` control field.
"""

from providers.mock.app import MODEL_IDS, create_mock_app
from providers.mock.chat_plan import IMAGE_TOKENS, reply_text
from providers.mock.cli import add_arguments, main, settings_from_args
from providers.mock.embeddings import embedding_vector
from providers.mock.server import MockServer, run_mock_provider, start_mock_server
from providers.mock.settings import MockControl, MockSettings
from providers.mock.stats import MockStats

__all__ = [
    "IMAGE_TOKENS",
    "MODEL_IDS",
    "MockControl",
    "MockServer",
    "MockSettings",
    "MockStats",
    "add_arguments",
    "create_mock_app",
    "embedding_vector",
    "main",
    "reply_text",
    "run_mock_provider",
    "settings_from_args",
    "start_mock_server",
]

if __name__ == "__main__":
    main()
