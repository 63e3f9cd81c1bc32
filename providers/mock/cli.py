"""Command-line options of the mock provider, shared by `steerway mock-provider` and
`python -m providers.mock_server`.

Only `main` needs the server: every `steerway` command builds these options, so the server
(aiohttp and the mock's routes) is imported when the mock is run, not here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from providers.mock.settings import MockSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= {minimum}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = MockSettings()
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument(
        "--port", type=_int_at_least(0), default=DEFAULT_PORT, help="port (0: any free port)"
    )
    parser.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=1,
        help="processes sharing the port through SO_REUSEPORT",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        default=defaults.latency_ms,
        help="delay before an answer or before a stream's headers",
    )
    parser.add_argument(
        "--ttft-ms",
        type=_non_negative_float,
        default=defaults.ttft_ms,
        help="streaming: extra delay before the first content chunk",
    )
    parser.add_argument(
        "--chunk-interval-ms",
        type=_non_negative_float,
        default=defaults.chunk_interval_ms,
        help="streaming: delay between content chunks",
    )
    parser.add_argument(
        "--chunks", type=_int_at_least(0), default=defaults.chunks, help="content chunks per reply"
    )
    parser.add_argument(
        "--tokens-per-chunk",
        type=_int_at_least(1),
        default=defaults.tokens_per_chunk,
        help="words (tokens) per content chunk",
    )
    parser.add_argument(
        "--embedding-dimensions",
        type=_int_at_least(1),
        default=defaults.embedding_dimensions,
        help="embedding size when a request does not ask for one",
    )
    parser.add_argument(
        "--require-api-key",
        default=None,
        metavar="KEY",
        help="answer 401 unless requests send 'Authorization: Bearer KEY'",
    )


def settings_from_args(ns: argparse.Namespace) -> MockSettings:
    return MockSettings(
        latency_ms=ns.latency_ms,
        ttft_ms=ns.ttft_ms,
        chunk_interval_ms=ns.chunk_interval_ms,
        chunks=ns.chunks,
        tokens_per_chunk=ns.tokens_per_chunk,
        embedding_dimensions=ns.embedding_dimensions,
        require_api_key=ns.require_api_key,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m providers.mock_server",
        description="A mock LLM provider speaking OpenAI's wire format.",
    )
    add_arguments(parser)
    ns = parser.parse_args(argv)
    from providers.mock.server import run_mock_provider

    try:
        run_mock_provider(ns.host, ns.port, settings_from_args(ns), workers=ns.workers)
    except OSError as error:
        parser.exit(1, f"mock provider: cannot listen on {ns.host}:{ns.port}: {error.strerror}\n")
    except RuntimeError as error:
        parser.exit(1, f"mock provider: {error}\n")
    except KeyboardInterrupt:
        pass
