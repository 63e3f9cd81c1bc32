"""Errors on console pages answer as pages in the console's layout; `/admin/api` stays JSON.

The application's exception handler asks `is_console_page` first and hands such requests here.
The page says what went wrong and what to do, never more: a 500 shows no exception text.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Template

from admin_ui.pages import ADMIN_PATH, PAGE_HEADERS, shell_context
from admin_ui.static_files import STATIC_PATH
from gateway.errors import GatewayError
from telemetry.db_outage import is_unavailable

logger = logging.getLogger("steerway")

API_PATH = f"{ADMIN_PATH}/api"

TITLES = {
    400: "This address is not valid",
    401: "Sign in to see this page",
    403: "You may not see this page",
    404: "Not found",
    405: "Not allowed here",
    503: "The gateway cannot answer right now",
}


def is_console_page(path: str) -> bool:
    """Whether `path` is an HTML page of the console (not its JSON API, not a static file)."""
    if path != ADMIN_PATH and not path.startswith(ADMIN_PATH + "/"):
        return False
    return not any(path == p or path.startswith(p + "/") for p in (API_PATH, STATIC_PATH))


def console_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status, message = _classify(request, exc)
    headers = dict(PAGE_HEADERS)
    if isinstance(exc, GatewayError):
        headers.update({k: v for k, v in exc.headers.items() if k.lower() == "retry-after"})
    try:
        return Template(
            template_name="error.html",
            context={
                **shell_context(request, nav_active=""),
                "status": status,
                "heading": TITLES.get(status, "Something went wrong" if status >= 500 else "Error"),
                "message": message,
                "path": request.url.path,
            },
            status_code=status,
            media_type=MediaType.HTML,
            headers=headers,
        )
    except Exception:  # the page itself could not be built: answer plainly
        logger.exception("the error page failed")
        return Response(f"{status} {message}\n", status_code=status, media_type="text/plain")


def _classify(request: Request[Any, Any, Any], exc: Exception) -> tuple[int, str]:
    if isinstance(exc, GatewayError):
        return exc.status, _console_message(exc)
    if is_unavailable(exc):
        outage = request.app.state.gateway.database_outage
        outage.refused(exc, f"{request.method} {request.url.path}")
        return 503, "The database is not answering. The page will work again once it is back."
    if isinstance(exc, NotFoundException):
        return 404, f"There is no page at {request.url.path[:200]}."
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status >= 500:
            logger.error("console page failed: %s", exc.detail)
            return status, "The gateway failed to show this page."
        return status, str(exc.detail)
    logger.exception("unhandled error on a console page", exc_info=exc)
    return 500, "The gateway failed to show this page. The error is in the gateway's log."


def _console_message(error: GatewayError) -> str:
    if error.code in ("missing_api_key", "invalid_api_key"):
        return "The key sent with this request is not valid. Sign in at /admin/signin instead."
    if error.code == "admin_key_required":
        return "The key you are using is not an admin key."
    return error.message
