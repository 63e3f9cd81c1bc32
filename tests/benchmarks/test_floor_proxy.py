"""The `floor` target: a real uvicorn serving `benchmarks/floor_proxy.py` in front of the real
mock provider, answers whole and streamed passed on unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from benchmarks.targets import (
    PLAIN_MODEL,
    STREAM_MODEL,
    MockProfile,
    Mocks,
    Target,
    Workspace,
    start_floor,
    start_mock,
)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workspace = Workspace(tmp_path_factory.mktemp("floor"))
    try:
        mocks = Mocks(
            plain=start_mock(workspace, MockProfile("plain", 1)),
            stream=start_mock(workspace, MockProfile("stream", 1, chunks=5)),
        )
        yield start_floor(workspace, mocks)
    finally:
        workspace.stop_all()


def body(stream: bool) -> dict[str, object]:
    return {
        "model": "mock-gpt",
        "messages": [{"role": "user", "content": "floor 7731"}],
        "stream": stream,
    }


def test_a_whole_answer_is_the_mocks(floor: Target) -> None:
    answer = httpx.post(floor.route(PLAIN_MODEL).url, json=body(False), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert "floor 7731" in answer.json()["choices"][0]["message"]["content"]


def test_a_stream_is_passed_on_event_by_event(floor: Target) -> None:
    with httpx.stream("POST", floor.route(STREAM_MODEL).url, json=body(True), timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert (
        sum(
            1
            for chunk in chunks
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content")
        )
        == 5
    )


def test_an_unknown_path_is_a_404(floor: Target) -> None:
    base = floor.route(PLAIN_MODEL).url.split("/plain/")[0]
    assert httpx.post(f"{base}/elsewhere/v1/chat/completions", json=body(False)).status_code == 404
    assert httpx.get(f"{base}/readyz").status_code == 200
