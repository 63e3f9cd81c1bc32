"""The rule pages served on their own: `/admin/rules` and a template setup for them.

Where the console's shell (its router under `/admin` and its `TemplateConfig`) is present, it
mounts `rules_pages_router()` itself and this module is not used. The environment here is set up
as the console's: autoescaping, undefined variables as errors, a `static(name)` global for files
under `/admin/static/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from admin_ui.rules_pages import rules_pages_router

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_PATH = "/admin/static"


def static_url(name: str) -> str:
    return f"{STATIC_PATH}/{name}"


def rules_template_config() -> TemplateConfig[Any]:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.globals["static"] = static_url
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def admin_rules_pages() -> Router:
    """The rule pages at `/admin/rules/...`."""
    return Router(path="/admin", route_handlers=[rules_pages_router()], include_in_schema=False)
