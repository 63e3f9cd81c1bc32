"""Deterministic embeddings: each vector comes from a hash of its input, so equal inputs give
equal vectors, and a shorter `dimensions` gives a (re-normalised) prefix of a longer one.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any

import msgspec

from providers.mock.errors import MockRequestError

MAX_DIMENSIONS = 8192
MAX_INPUTS = 2048

_encode = msgspec.json.Encoder().encode


def embedding_vector(item: str | list[int], dimensions: int) -> array[float]:
    """A unit-length float32 vector derived from `item`."""
    if isinstance(item, str):
        seed = b"text:" + item.encode()
    else:
        seed = b"tokens:" + ",".join(map(str, item)).encode()
    words = array("I", hashlib.shake_256(seed).digest(4 * dimensions))
    if sys.byteorder == "big":
        words.byteswap()
    values = [word / 2147483648.0 - 1.0 for word in words]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return array("f", [value / norm for value in values])


def encode_vector(vector: array[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector.tolist()
    little_endian = array("f", vector)
    if sys.byteorder == "big":
        little_endian.byteswap()
    return base64.b64encode(little_endian.tobytes()).decode("ascii")


def embeddings_body(body: dict[str, Any], default_dimensions: int, *, with_usage: bool) -> bytes:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise MockRequestError("you must provide a model parameter", param="model")
    items = _inputs(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = default_dimensions
    elif (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise MockRequestError(
            f"'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}", param="dimensions"
        )
    encoding_format = body.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise MockRequestError(
            "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": encode_vector(embedding_vector(item, dimensions), encoding_format),
        }
        for index, item in enumerate(items)
    ]
    response: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if with_usage:
        tokens = sum(_token_count(item) for item in items)
        response["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _encode(response)


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise MockRequestError(
            "'input' must be a string, an array of strings, an array of token integers "
            "or an array of token arrays, and must not be empty",
            param="input",
        )
    if len(value) > MAX_INPUTS:
        raise MockRequestError(f"'input' may hold at most {MAX_INPUTS} items", param="input")
    if all(_is_token(token) for token in value):
        return [value]
    items: list[str | list[int]] = []
    for index, item in enumerate(value):
        if isinstance(item, str) or (
            isinstance(item, list) and item and all(_is_token(token) for token in item)
        ):
            items.append(item)
        else:
            raise MockRequestError(
                "each input must be a string or a non-empty array of token integers",
                param=f"input[{index}]",
            )
    return items


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _token_count(item: str | list[int]) -> int:
    if isinstance(item, str):
        return max(1, math.ceil(len(item) / 4))
    return len(item)
