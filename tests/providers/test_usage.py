from providers.openai_format import read_chunk
from providers.usage import Usage, estimated_usage


def test_an_estimate_rounds_the_streamed_characters_up_to_tokens() -> None:
    assert estimated_usage(12, 0) == Usage(12, 0, None, 12)
    assert estimated_usage(12, 1) == Usage(12, 1, None, 13)
    assert estimated_usage(12, 8) == Usage(12, 2, None, 14)
    assert estimated_usage(12, 9) == Usage(12, 3, None, 15)


def test_streamed_characters_count_content_and_tool_calls() -> None:
    text = read_chunk(
        b'{"choices": [{"index": 0, "delta": {"content": "hello"}},'
        b' {"index": 1, "delta": {"content": "hi"}}]}'
    )
    assert (text.output_chars, text.has_output) == (7, True)
    call = read_chunk(
        b'{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,'
        b' "function": {"name": "lookup", "arguments": "{\\"q\\": 1}"}}]}}]}'
    )
    assert (call.output_chars, call.has_output) == (len("lookup") + len('{"q": 1}'), True)
    odd = read_chunk(b'{"choices": [{"delta": {"tool_calls": [7, {"function": null}]}}]}')
    assert odd.output_chars == 0
    finish = read_chunk(b'{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}')
    assert (finish.output_chars, finish.has_output) == (0, False)
