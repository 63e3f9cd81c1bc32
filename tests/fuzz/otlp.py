"""Mutated `POST /v1/traces` exports: valid OTLP bodies (protobuf and JSON, plain and gzip) changed
the ways a broken exporter or a hostile client would change them, and the invariants the answers
must hold: never a 5xx, every error a `google.rpc.Status` in the request's encoding, every success
an `ExportTraceServiceResponse`.

Drawn from one `random.Random(seed)` per case, like `tests.fuzz.corpus`.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.e2e.otlp_payloads import SpanSpec, genai_attributes, json_request, protobuf_request
from tests.fuzz.corpus import _mutate_tree, _raw_mutations

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"


def _specs() -> list[SpanSpec]:
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    return [
        SpanSpec(
            "chat mock-gpt",
            genai_attributes("mock-gpt", 12, 30, **{"gen_ai.input.messages": messages}),
            events=[("gen_ai.choice", {"index": 0, "message": '{"content": "ok"}'})],
        ),
        SpanSpec("GET /", {"http.request.method": "GET"}),
    ]


@dataclass
class OtlpCase:
    index: int
    content_type: str
    headers: dict[str, str]
    body: bytes
    mutations: list[str]

    def describe(self) -> str:
        return f"#{self.index} POST {PATH} {self.content_type} [{'; '.join(self.mutations)}]"


def _flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.choice([1, 3, 20])):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def otlp_cases(seed: int, key: str, count: int) -> Iterator[OtlpCase]:
    raw_mutations = _raw_mutations()
    for index in range(count):
        rng = random.Random(f"otlp:{seed}:{index}")
        specs = _specs()
        as_json = rng.random() < 0.5
        mutations: list[str] = []
        if as_json:
            tree = json.loads(json_request(specs))
            for _ in range(rng.choice([1, 2, 3])):
                tree, what = _mutate_tree(rng, tree)
                mutations.append(what)
            try:
                body = json.dumps(tree).encode("utf-8", "surrogatepass")
            except RecursionError:
                body = b"[" * 5_000
                mutations.append("nested beyond the encoder")
            if rng.random() < 0.2:
                name, mutate = rng.choice(raw_mutations)
                body = mutate(rng, body)
                mutations.append(f"raw {name}")
        else:
            body = protobuf_request(specs)
            pick = rng.randrange(4)
            if pick == 0:
                body = _flip_bytes(rng, body)
                mutations.append("flipped bytes")
            elif pick == 1:
                body = body[: rng.randrange(len(body))]
                mutations.append("truncated")
            elif pick == 2:
                body = body + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
                mutations.append("trailing bytes")
            else:
                mutations.append("as built")
        content_type = "application/json" if as_json else PROTOBUF
        headers = {"authorization": f"Bearer {key}"}
        roll = rng.random()
        if roll < 0.25:
            body = gzip.compress(body)
            headers["content-encoding"] = "gzip"
            mutations.append("gzip")
            if rng.random() < 0.3:
                body = _flip_bytes(rng, body)
                mutations.append("gzip damaged")
        elif roll < 0.3:
            content_type = rng.choice(["text/plain", "", "application/json; charset=utf-16"])
            mutations.append(f"content-type {content_type!r}")
        elif roll < 0.35:
            headers.pop("authorization")
            mutations.append("no key")
        yield OtlpCase(index, content_type, headers, body, mutations)


def check_answer(case: OtlpCase, response: httpx.Response) -> str | None:
    """What is wrong with the answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"answered {status}: {response.content[:200]!r}"
    protobuf = case.content_type.split(";")[0].strip() == PROTOBUF
    if status == 200:
        if protobuf:
            try:
                ExportTraceServiceResponse.FromString(response.content)
            except DecodeError:
                return f"200 that is not an ExportTraceServiceResponse: {response.content[:200]!r}"
            return None
        try:
            answer = json.loads(response.content)
        except ValueError:
            return f"200 that is not JSON: {response.content[:200]!r}"
        return None if isinstance(answer, dict) else f"200 with {answer!r}"
    if protobuf:
        try:
            message = Status.FromString(response.content).message
        except DecodeError:
            return f"{status} that is not a google.rpc.Status: {response.content[:200]!r}"
    else:
        try:
            message = json.loads(response.content)["message"]
        except (ValueError, KeyError, TypeError):
            return f"{status} without the JSON Status shape: {response.content[:200]!r}"
    return None if message else f"{status} without a message"
