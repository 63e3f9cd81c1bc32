"""Browser tests of the console: Playwright driving Debian's Chromium against a gateway process.

Fixtures, from the outside in:

- `browser` (session): Chromium at /usr/bin/chromium, headless, with the flags this machine's
  closed network needs. Missing Chromium skips these tests with the reason, and fails them under
  CI=true (`make chromium` installs it; `make test` does so first).
- `console_gateway` (module): `steerway serve` on 127.0.0.1 with a migrated SQLite database and
  the mock provider, configured with rules, guardrails and retries so traces have something to
  show. One per test module: pages of a module share it.
- `open_context(**options)`: new browser contexts for the test, closed after it. Every request a
  page makes is routed through a guard that refuses any other origin than the gateway's; a
  refused request, a script error or an error in the browser's console fails the test.
- `sign_in(credential=None, **options)`: THE way a test becomes a console user: a context signed
  in as the module's operator user (a session cookie from the sign-in form's endpoint), or, with
  `credential`, one that sends that admin key as a bearer header on every request.
- `console`: a page signed in as the operator, the usual starting point.

On a failed test every page still open is photographed into test-artifacts/screenshots/.
`docs_screenshot(page, name)` saves a picture for docs/console.md (test-artifacts/docs-images/,
and docs/images/ when STEERWAY_DOCS_IMAGES=1: `make docs-images`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

import migrations
from tests.conftest import IN_CI
from tests.console_users import ConsoleUser, create_user
from tests.console_users import sign_in as sign_in_as
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_provider

__all__ = ["mock_provider"]

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_IMAGES = REPO / "docs" / "images"
CHROMIUM_FLAGS = [
    # As root in a container there is no sandbox to use.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine's network is closed: without these Chromium keeps calling home and failing.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000


def chromium_path() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found is None:
        message = (
            "Chromium is not installed: `make chromium` installs Debian's package "
            "(apt-get install -y chromium); `make test` does it first"
        )
        if IN_CI:
            pytest.fail(f"{message}. Under CI=true the browser tests must run.", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """One driver per module: Playwright's synchronous API keeps an event loop running in this
    thread while it is open, which `asyncio.run` in any later test module would trip over."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = chromium_path()
    launched = playwright.chromium.launch(
        executable_path=executable, args=CHROMIUM_FLAGS, headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


# --- the gateway -------------------------------------------------------------------------------


def off_the_loop(work: Callable[[], T]) -> T:
    """Run `work` in another thread. Playwright's synchronous API keeps an event loop running
    in this one, where `asyncio.run` (the database helpers, migrations) refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


class BrowserTestDatabase(Database):
    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return off_the_loop(lambda: Database.rows(self, sql, **params))


def console_config(mock: MockProcess) -> dict[str, Any]:
    """A rule, a guardrail, and a model that retries and then falls back: traces with something
    in every section."""
    provider = {
        "type": "openai",
        "base_url": mock.base_url,
        "timeouts": {"connect": 2, "first_byte": 5, "total": 15},
    }
    return {
        "providers": {"mock": provider, "backup": provider},
        "models": {
            "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
            "large": {
                "deployments": [{"provider": "mock", "model": "mock-gpt-large"}],
                "retries": {"attempts": 1, "backoff": 0.01},
                "fallbacks": ["large-b"],
            },
            "large-b": [
                {
                    "provider": "backup",
                    "model": "mock-gpt-large-b",
                    "price": {"input_per_million": 2.5, "output_per_million": 10},
                }
            ],
        },
        "guardrails": {
            "definitions": {
                "codenames": {"kind": "deny_list", "words": ["project falcon"], "action": "log"},
            }
        },
        "rules": [
            {
                "id": "premium-to-large",
                "name": "Premium traffic to the large model",
                "priority": 10,
                "when": {"tags": {"contains": "premium"}},
                "then": {"route": "large", "tag": ["routed-premium"], "guardrails": ["codenames"]},
            }
        ],
        "cache": {"enabled": False},
        # Pages that queue evaluations see their rows as queued: no judge takes them meanwhile
        # (the evaluators' page test runs a gateway that judges).
        "evaluation": {"run_in_serve": False},
    }


@pytest.fixture(scope="module")
def console_gateway(
    mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway for the pages of one test module (SQLite; the pages' HTTP tests cover both
    backends)."""
    tmp = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp / 'steerway.db'}"
    off_the_loop(lambda: migrations.upgrade(url))
    process = GatewayProcess(
        BrowserTestDatabase(url),
        console_config(mock_provider),
        tmp,
        master_key="sk-console-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


# --- contexts, pages and their guards ----------------------------------------------------------


@dataclass
class PageWatch:
    """What the pages of one test did that they must not: requests to another origin, script
    errors, errors in the console."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    expected_errors: list[re.Pattern[str]] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(url)
            route.abort("blockedbyclient")
            return
        route.continue_()

    def watch(self, page: Page) -> None:
        self.pages.append(page)
        page.on("pageerror", lambda error: self.errors.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console {message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )

    def expect_error(self, pattern: str) -> None:
        """An error the test provokes on purpose (a 404 page logs its status, for one)."""
        self.expected_errors.append(re.compile(pattern))

    def problems(self) -> list[str]:
        unexpected = [
            error
            for error in self.errors
            if not any(pattern.search(error) for pattern in self.expected_errors)
        ]
        return [f"request to another origin: {url}" for url in self.foreign] + unexpected


WATCH = pytest.StashKey[PageWatch]()


@pytest.fixture
def page_watch(request: pytest.FixtureRequest, console_gateway: GatewayProcess) -> PageWatch:
    watch = PageWatch(origin=console_gateway.url)
    request.node.stash[WATCH] = watch
    return watch


@pytest.fixture
def open_context(
    browser: Browser, console_gateway: GatewayProcess, page_watch: PageWatch
) -> Iterator[Callable[..., BrowserContext]]:
    opened: list[BrowserContext] = []

    def open_one(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=console_gateway.url, **options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.route("**/*", page_watch.route)
        context.on("page", page_watch.watch)
        opened.append(context)
        return context

    yield open_one
    for context in opened:
        context.close()


@pytest.fixture
def sign_in(
    open_context: Callable[..., BrowserContext], console_gateway: GatewayProcess
) -> Callable[..., BrowserContext]:
    """A context signed in as the module's operator user, or with the admin key `credential`.

    The one place that knows how a browser signs in to the console: a session made through
    `POST /admin/signin`, its cookie set on the context.
    """

    def signed_in(credential: str | None = None, **options: Any) -> BrowserContext:
        if credential is not None:
            headers = {
                **options.pop("extra_http_headers", {}),
                "Authorization": f"Bearer {credential}",
            }
            return open_context(extra_http_headers=headers, **options)
        context = open_context(**options)
        session = off_the_loop(lambda: sign_in_as(console_gateway.url, operator))
        context.add_cookies([session.browser_cookie()])
        return context

    operator = _operators.get(console_gateway.url)
    if operator is None:
        operator = off_the_loop(
            lambda: create_user(
                console_gateway.database.url,
                email="operator@example.com",
                name="Olga Operator",
                operator=True,
                role="owner",
            )
        )
        _operators[console_gateway.url] = operator
    return signed_in


_operators: dict[str, ConsoleUser] = {}
"""The operator user of each module's gateway, made once."""


@pytest.fixture
def console(sign_in: Callable[..., BrowserContext]) -> Page:
    """A page signed in as the operator, on a wide screen."""
    return sign_in(viewport={"width": 1440, "height": 900}).new_page()


# --- pictures ----------------------------------------------------------------------------------


def _file_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-")[:150]


@pytest.fixture
def docs_screenshot() -> Callable[..., Path]:
    """Save `page` as `console-<name>.png` for docs/console.md."""

    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        folder = ARTIFACTS / "docs-images"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"console-{name}.png"
        page.evaluate("window.scrollTo(0, 0)")
        viewport = page.viewport_size
        if full_page and viewport is not None:
            # A viewport as tall as the page keeps the sticky navigation where it belongs.
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": viewport["width"], "height": height})
        page.screenshot(path=str(path), animations="disabled")
        if full_page and viewport is not None:
            page.set_viewport_size(viewport)
        if os.environ.get("STEERWAY_DOCS_IMAGES") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / path.name)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose pages went to another origin or hit a script error fails, even when its own
    assertions passed."""
    result = yield
    watch = item.stash.get(WATCH, None)
    if watch is not None and watch.problems():
        raise AssertionError("the console misbehaved:\n  " + "\n  ".join(watch.problems()))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    watch = item.stash.get(WATCH, None)
    if report.when == "call" and report.failed and watch is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(watch.pages):
            if page.is_closed():
                continue
            path = SCREENSHOTS / f"{_file_name(item.nodeid)}-{index}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception as error:  # a crashed page: the report still matters more
                report.sections.append(("screenshot", f"could not take {path}: {error}"))
                continue
            report.sections.append(("screenshot", str(path.relative_to(REPO))))
    return report
