"""Mutated `/v1` requests: valid chat, stream, tool-call and embeddings bodies and headers, each
changed in one to three ways a hostile or careless client would change them.

Everything is drawn from one `random.Random(seed)`, so a case is reproduced from its seed and
index alone (`python -m tests.fuzz --seed S --show N`).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Json = Any

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MODELS = "/v1/models"

_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _seeds(model: str, embedding_model: str) -> list[tuple[str, Json]]:
    user = {"role": "user", "content": "What is the capital of France?"}
    return [
        (CHAT, {"model": model, "messages": [user]}),
        (
            CHAT,
            {
                "model": model,
                "messages": [{"role": "system", "content": "Be brief."}, user],
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 32,
                "temperature": 0.2,
                "user": "end-user-7",
            },
        ),
        (
            CHAT,
            {
                "model": model,
                "tools": [_WEATHER_TOOL],
                "tool_choice": "auto",
                "messages": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city": "Paris"}',
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "18 C, clear"},
                ],
            },
        ),
        (
            CHAT,
            {
                "model": model,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Describe this image."},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{_PIXEL}"},
                            },
                        ],
                    }
                ],
                "n": 2,
            },
        ),
        (
            CHAT,
            {
                "model": model,
                "messages": [user],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "answer",
                        "schema": {
                            "type": "object",
                            "properties": {"capital": {"type": "string"}},
                        },
                    },
                },
                "max_completion_tokens": 64,
            },
        ),
        (EMBEDDINGS, {"model": embedding_model, "input": ["first text", "second text"]}),
        (EMBEDDINGS, {"model": embedding_model, "input": "one text", "encoding_format": "float"}),
        (EMBEDDINGS, {"model": embedding_model, "input": [[1, 2, 3], [4, 5]]}),
    ]


_ODD_TEXT = [
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\u202etxet desrever",
    "\ufeffBOM first",
    "zero\u200bwidth",
    "e\u0301\u0301\u0301combining",
    "\U0001f600\U0001f680 emoji",
    "\U000e0041\U000e0042 tag characters",
    "\uffff\ufffe noncharacters",
    "Ω" * 2_000,
    "\\u0000 looks escaped",
    "<script>alert(1)</script>",
    "'; DROP TABLE traces; --",
    "${OPENAI_API_KEY}",
    "%s%n%x",
    "\r\n\r\nHTTP/1.1 200 OK",
]
_NUMBERS = [
    0,
    -1,
    1,
    -(2**31),
    2**31,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    1.5,
    -0.0,
    1e-308,
    1e308,
    -1e308,
]


def _odd_value(rng: random.Random) -> Json:
    pick = rng.randrange(9)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.choice(_NUMBERS)
    if pick == 2:
        return rng.choice(_ODD_TEXT)
    if pick == 3:
        return "x" * rng.choice([256, 4_096, 65_536, 300_000])
    if pick == 4:
        return rng.choice([[], {}, [None], [[]], {"": ""}, {"a": {"b": {"c": None}}}])
    if pick == 5:
        depth = rng.choice([50, 200, 900])
        value: Json = "deep"
        for _ in range(depth):
            value = [value] if rng.random() < 0.5 else {"k": value}
        return value
    if pick == 6:
        return [rng.choice(_ODD_TEXT) for _ in range(rng.choice([3, 100, 2_000]))]
    if pick == 7:
        return {f"k{i}": i for i in range(rng.choice([10, 1_000]))}
    return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 64)))


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _set(root: Json, path: tuple[Any, ...], value: Json) -> Json:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return root


def _delete(root: Json, path: tuple[Any, ...]) -> Json:
    if not path:
        return root
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return root


def _mutate_tree(rng: random.Random, body: Json) -> tuple[Json, str]:
    paths = list(_paths(body))
    path = rng.choice(paths)
    shown = ".".join(str(step) for step in path) or "<root>"
    choice = rng.randrange(4)
    if choice == 0 and path:
        return _delete(body, path), f"delete {shown}"
    if choice == 1 and isinstance(body, dict):
        name = rng.choice(["stream", "n", "max_tokens", "logit_bias", "seed", "x_unknown", ""])
        body[name] = _odd_value(rng)
        return body, f"set {name or '<empty key>'}"
    return _set(body, path, _odd_value(rng)), f"replace {shown}"


# --- raw body mutations: what json.dumps cannot produce ----------------------------------------


def _invalid_utf8(rng: random.Random, raw: bytes) -> bytes:
    junk = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
    at = raw.find(b'"', rng.randrange(max(1, len(raw) // 2)))
    at = at + 1 if at >= 0 else len(raw) // 2
    return raw[:at] + junk + raw[at:]


def _raw_mutations() -> list[tuple[str, Callable[[random.Random, bytes], bytes]]]:
    return [
        ("invalid utf-8", _invalid_utf8),
        ("truncated", lambda rng, raw: raw[: rng.randrange(len(raw))]),
        ("trailing garbage", lambda rng, raw: raw + rng.choice([b"}", b" x", b"\x00", b"[]"])),
        ("bom", lambda rng, raw: b"\xef\xbb\xbf" + raw),
        ("empty", lambda rng, raw: b""),
        ("not json", lambda rng, raw: rng.choice([b"hello", b"\x00\x01\x02", b"null", b"[]"])),
        ("nan", lambda rng, raw: raw.replace(b'"model"', b'"t":NaN,"model"', 1)),
        ("infinity", lambda rng, raw: raw.replace(b'"model"', b'"t":-Infinity,"model"', 1)),
        ("huge exponent", lambda rng, raw: raw.replace(b'"model"', b'"t":1e999999,"model"', 1)),
        (
            "huge integer",
            lambda rng, raw: raw.replace(
                b'"model"', b'"max_tokens":' + b"9" * 5000 + b',"model"', 1
            ),
        ),
        (
            "lone surrogate",
            lambda rng, raw: raw.replace(b'"model"', b'"user":"\\ud800\\udfff\\ud800","model"', 1),
        ),
        (
            "escaped nul",
            lambda rng, raw: raw.replace(b'"model"', b'"user":"a\\u0000b","model"', 1),
        ),
        (
            "duplicate key",
            lambda rng, raw: raw.replace(b'"model"', b'"model":"other-model","model"', 1),
        ),
        ("nested 10000", lambda rng, raw: b"[" * 10_000 + b"]" * 10_000),
        (
            "nested field 5000",
            lambda rng, raw: raw.replace(
                b'"model"', b'"m":' + b"[" * 5000 + b"]" * 5000 + b',"model"', 1
            ),
        ),
    ]


# --- header mutations -----------------------------------------------------------------------------


def _header_mutations() -> list[tuple[str, list[tuple[bytes, bytes]]]]:
    big = b"a" * 60_000
    deep = b'{"a":' * 600 + b"1" + b"}" * 600
    return [
        ("metadata not json", [(b"x-steerway-metadata", b"{nope")]),
        ("metadata array", [(b"x-steerway-metadata", b"[1,2]")]),
        ("metadata deep", [(b"x-steerway-metadata", deep)]),
        ("metadata huge", [(b"x-steerway-metadata", b'{"k":"' + big + b'"}')]),
        ("metadata nul", [(b"x-steerway-metadata", b'{"k":"a\\u0000b","n":1e999}')]),
        ("metadata latin-1", [(b"x-steerway-metadata", '{"k":"ÿ\u00e9"}'.encode("latin-1"))]),
        ("metadata utf-8", [(b"x-steerway-metadata", '{"k":"\u65e5\u672c"}'.encode())]),
        ("tags many", [(b"x-steerway-tags", b",".join(b"t%d" % i for i in range(5_000)))]),
        ("tags odd", [(b"x-steerway-tags", "a,\u00ff,\u65e5,,  ,".encode())]),
        ("tags duplicate header", [(b"x-steerway-tags", b"a"), (b"x-steerway-tags", b"b")]),
        ("cache odd", [(b"x-steerway-cache", b"ttl=-5")]),
        ("cache huge ttl", [(b"x-steerway-cache", b"ttl=" + b"9" * 400)]),
        ("cache unknown", [(b"x-steerway-cache", b"no-cache, ttl=abc, \xff")]),
        ("traceparent zeros", [(b"traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")]),
        ("traceparent odd", [(b"traceparent", b"ff-zz-\xff-01")]),
        (
            "traceparent fixed",
            [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        ),
        ("request id huge", [(b"x-request-id", big)]),
        ("request id odd", [(b"x-request-id", "\u00ff\u00fe".encode())]),
        ("content-type text", [(b"content-type", b"text/plain")]),
        ("content-type odd", [(b"content-type", b"application/json; charset=utf-16")]),
        ("big header", [(b"x-anything", big)]),
        ("many headers", [(b"x-h%d" % i, b"v") for i in range(90)]),
    ]


def _auth_mutations(key: str) -> list[tuple[str, list[tuple[bytes, bytes]]]]:
    return [
        ("no auth", []),
        ("empty bearer", [(b"authorization", b"Bearer")]),
        ("basic auth", [(b"authorization", b"Basic dXNlcjpwYXNz")]),
        ("wrong key", [(b"authorization", b"Bearer sk-wrong-" + b"z" * 40)]),
        ("huge key", [(b"authorization", b"Bearer " + b"k" * 50_000)]),
        ("odd key", [(b"authorization", "Bearer \u00ff\u00e9".encode())]),
        (
            "duplicate auth",
            [(b"authorization", f"Bearer {key}".encode()), (b"authorization", b"Bearer other")],
        ),
    ]


@dataclass
class Case:
    index: int
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    mutations: list[str] = field(default_factory=list)
    authenticated: bool = True
    """Carries exactly the one valid key: the gateway must record it."""
    stream: bool = False

    def describe(self) -> str:
        return f"#{self.index} {self.method} {self.path} [{'; '.join(self.mutations)}]"


class Corpus:
    """An endless, reproducible sequence of mutated requests."""

    def __init__(
        self,
        seed: int,
        key: str,
        *,
        model: str = "mock-gpt",
        embedding_model: str = "mock-embedding",
    ) -> None:
        self.seed = seed
        self.key = key
        self._seeds = _seeds(model, embedding_model)
        self._raw = _raw_mutations()
        self._headers = _header_mutations()
        self._auth = _auth_mutations(key)

    def case(self, index: int) -> Case:
        rng = random.Random(f"{self.seed}:{index}")
        auth = [(b"authorization", f"Bearer {self.key}".encode())]
        if rng.random() < 0.03:
            return Case(index, "GET", MODELS, auth, b"", ["plain models"])
        path, seed = rng.choice(self._seeds)
        body = copy.deepcopy(seed)
        mutations: list[str] = []
        headers = list(auth)
        headers.append((b"content-type", b"application/json"))
        authenticated = True
        for _ in range(rng.choice([1, 1, 2, 3])):
            kind = rng.random()
            if kind < 0.5:
                body, what = _mutate_tree(rng, body)
                mutations.append(what)
            elif kind < 0.8:
                name, extra = rng.choice(self._headers)
                headers = [h for h in headers if h[0] not in {n for n, _ in extra}] + extra
                mutations.append(f"header {name}")
            elif kind < 0.9:
                name, extra = rng.choice(self._auth)
                headers = [h for h in headers if h[0] != b"authorization"] + extra
                authenticated = False
                mutations.append(f"auth {name}")
            else:
                mutations.append("raw")
        try:
            raw = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        except RecursionError:  # nested values piled on one another: deeper than json goes
            raw = b'{"model": "mock-gpt", "messages": ' + b"[" * 3_000 + b"]" * 3_000 + b"}"
            mutations.append("nested beyond the encoder")
        if "raw" in mutations:
            name, mutate = rng.choice(self._raw)
            raw = mutate(rng, raw)
            mutations[mutations.index("raw")] = f"raw {name}"
        stream = isinstance(body, dict) and body.get("stream") is True
        return Case(index, "POST", path, headers, raw, mutations, authenticated, stream)

    def cases(self, count: int, start: int = 0) -> Iterator[Case]:
        for index in range(start, start + count):
            yield self.case(index)
