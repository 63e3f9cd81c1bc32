"""Decoding a JSON request body, for the `/v1` routes and the admin API alike.

Every way a body can fail to decode (bytes that are not UTF-8, lone surrogate escapes, nesting
deeper than the decoder goes, numbers out of range, plain syntax errors) is one 400 in OpenAI's
shape with `param` "body" and a reason the caller can act on, never an exception of the decoder.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError, invalid_request

BODY_PARAM = "body"
"""The `param` of an error about the body as a whole (it has no field to name)."""

_decode = msgspec.json.Decoder().decode


def decode_json_body(body: bytes) -> Any:
    """The JSON value of a request body."""
    if not body:
        raise invalid_request("The request body is empty; send a JSON object.", param=BODY_PARAM)
    try:
        return _decode(body)
    except UnicodeDecodeError:
        raise unparseable(f"it is not valid UTF-8 (byte {_first_invalid_byte(body)})") from None
    except RecursionError:
        raise unparseable("it nests deeper than the gateway reads") from None
    except msgspec.DecodeError as error:
        raise unparseable(_reason(error)) from None


def unparseable(reason: str | None = None) -> GatewayError:
    because = f": {reason}" if reason else ""
    return invalid_request(
        f"We could not parse the JSON body of your request{because}. "
        "The body must be a JSON object in UTF-8.",
        param=BODY_PARAM,
        code="invalid_json",
    )


def _reason(error: msgspec.DecodeError) -> str:
    """msgspec's message without its location: decoding into `Any`, that is always `$[...]`."""
    text = str(error).split(" - at `", 1)[0]
    return f"{text[:1].lower()}{text[1:]}"


def _first_invalid_byte(body: bytes) -> int:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return 0
