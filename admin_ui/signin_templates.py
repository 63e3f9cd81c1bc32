"""The sign-in, first-owner and password pages: standalone templates (they are shown before
anyone is signed in, so they carry none of the console's navigation), rendered here with the
console's template environment.

Each answer forbids caching (they hold CSRF-free forms and, for links, a token in the URL),
framing (no clickjacking of a password form), and referrers to other sites (a link's token must
not travel in a `Referer` header). `no-referrer` would be stricter but makes browsers send
`Origin: null` with the form, which the origin check rightly refuses.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from jinja2 import Environment
from litestar import MediaType, Response

from admin_ui.templating import console_environment

SECURITY_HEADERS: Final = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@cache
def _environment() -> Environment:
    return console_environment()


def render(
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    context = {"error": None, "notice": None, **context}
    body = _environment().get_template(template).render(**context)
    return Response(
        body,
        status_code=status,
        media_type=MediaType.HTML,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )
