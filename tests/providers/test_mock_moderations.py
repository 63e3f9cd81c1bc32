"""The mock provider's `/v1/moderations`, read by the official OpenAI SDK."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import openai
import pytest

from providers.mock_server import MockServer, start_mock_server


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    server = await start_mock_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def client(server: MockServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)


async def test_scores_come_from_the_words_of_each_input(client: openai.AsyncOpenAI) -> None:
    answer = await client.moderations.create(
        model="omni-moderation-latest", input=["You IDIOT, I will kill you", "lovely gardens"]
    )
    assert answer.model == "omni-moderation-latest"
    rude, kind = answer.results
    assert rude.flagged and not kind.flagged
    assert rude.category_scores.harassment == 0.81
    assert rude.category_scores.violence == 0.86
    assert rude.categories.harassment and rude.categories.violence
    assert not rude.categories.hate and rude.category_scores.hate == 0.0
    assert kind.category_scores.violence == 0.0


async def test_a_weak_word_scores_below_the_flag(client: openai.AsyncOpenAI) -> None:
    (result,) = (await client.moderations.create(input="what a loser")).results
    assert result.category_scores.harassment == 0.42
    assert not result.flagged and not result.categories.harassment


async def test_parts_are_one_input(client: openai.AsyncOpenAI) -> None:
    answer = await client.moderations.create(
        model="omni-moderation-latest",
        input=[
            {"type": "text", "text": "gore"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "text", "text": "and vermin"},
        ],
    )
    (result,) = answer.results
    assert result.category_scores.violence_graphic == 0.91
    assert result.category_scores.hate == 0.88


async def test_markers_delay_or_fail_the_answer(client: openai.AsyncOpenAI) -> None:
    started = time.perf_counter()
    await client.moderations.create(input="hi [[moderation-delay-ms:200]]")
    assert time.perf_counter() - started >= 0.2
    with pytest.raises(openai.InternalServerError):
        await client.moderations.create(input="hi [[moderation-error:500]]")


async def test_a_bad_input_is_a_400_in_openais_shape(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.moderations.create(input=[])
    assert caught.value.param == "input"
