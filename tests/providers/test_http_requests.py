"""What the upstream client refuses to send, and how it reads an endpoint."""

from __future__ import annotations

import pytest

from providers.errors import connection_reason
from providers.http_client import InvalidHeader, InvalidURL, RequestHeaders, endpoint

HEADERS = RequestHeaders({"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nInjected: yes"}, {"X-Evil": "a\nb"}, {"Bad Name": "v"}, {"X\r\nY": "v"}],
)
def test_a_header_with_a_line_break_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidHeader) as caught:
        HEADERS.with_headers(headers)
    assert connection_reason(caught.value) == "invalid header"


@pytest.mark.parametrize("address", ["ftp://example.com/x", "not a url", "http:///path"])
def test_only_http_urls_are_endpoints(address: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        endpoint(address)
    assert connection_reason(caught.value) == "invalid URL"


def test_an_endpoint_keeps_the_request_target_and_host() -> None:
    parsed = endpoint("https://api.example.com/v1beta/models/m:streamGenerateContent?alt=sse")
    assert parsed.origin == ("https", "api.example.com", 443)
    assert parsed.target == b"/v1beta/models/m:streamGenerateContent?alt=sse"
    assert parsed.host_header == b"api.example.com"
    assert str(parsed) == "https://api.example.com/v1beta/models/m:streamGenerateContent?alt=sse"
    assert endpoint("http://127.0.0.1:8080/v1").host_header == b"127.0.0.1:8080"
