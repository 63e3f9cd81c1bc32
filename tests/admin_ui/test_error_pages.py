"""A page that fails answers with a 500 page in the layout, the API with JSON; neither shows the
exception. Built on a small app with the gateway's own exception handler and templates."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from admin_ui.error_pages import is_console_page
from admin_ui.templating import template_config
from server.app import _error

SECRET = "sk-this-must-not-show"


@get("/admin/boom", sync_to_thread=False)
def page_boom() -> str:
    raise RuntimeError(f"broken with {SECRET}")


@get("/admin/api/boom", sync_to_thread=False)
def api_boom() -> str:
    raise RuntimeError(f"broken with {SECRET}")


def app() -> Litestar:
    return Litestar(
        route_handlers=[page_boom, api_boom],
        exception_handlers={Exception: _error},
        template_config=template_config(),
        logging_config=None,
    )


def test_a_failing_page_is_a_500_page_without_the_exception() -> None:
    with TestClient(app()) as client:
        response = client.get("/admin/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Something went wrong" in response.text
    assert '<nav class="sidebar"' in response.text
    assert SECRET not in response.text and "RuntimeError" not in response.text


def test_a_failing_api_route_stays_json() -> None:
    with TestClient(app()) as client:
        response = client.get("/admin/api/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert SECRET not in response.text


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/admin", True),
        ("/admin/", True),
        ("/admin/traces/abc", True),
        ("/admin/api", False),
        ("/admin/api/traces", False),
        ("/admin/static/console.css", False),
        ("/administrator", False),
        ("/v1/chat/completions", False),
        ("/admin/apis", True),
    ],
)
def test_which_paths_are_pages(path: str, page: bool) -> None:
    assert is_console_page(path) is page
