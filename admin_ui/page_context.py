"""What every key and workspace page's template receives besides its own data.

`base.html` reads `nav_active` (which navigation entry is current), `user` (who is signed in)
and `csrf_token` (the value every state-changing form sends back in a hidden field). `page` has
the signature of the console shell's page function, so the two can be exchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request
from litestar.response import Template

from admin_ui.auth import provide_author, workspace_scope

AnyRequest = Request[Any, Any, Any]

NO_STORE = "no-store"


@dataclass(frozen=True, slots=True)
class PageUser:
    name: str
    workspace_scope: str | None
    """The one workspace this user may see, or None for every workspace."""


def page_user(request: AnyRequest) -> PageUser:
    return PageUser(name=provide_author(request), workspace_scope=workspace_scope(request))


def csrf_token(request: AnyRequest) -> str:
    """The token of the signed-in session, which its forms send back; empty while pages are
    reached with a bearer key (a browser never sends one on its own)."""
    token = request.state.get("csrf_token", "")
    return token if isinstance(token, str) else ""


async def page(
    request: AnyRequest,
    template: str,
    *,
    nav_active: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """`template` with `context`, never kept by a cache: pages show who holds which key."""
    return Template(
        template_name=template,
        context={
            "nav_active": nav_active,
            "user": page_user(request),
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": NO_STORE},
    )
