"""The console's Jinja2 environment, registered with Litestar through `TemplateConfig`.

Templates live in `admin_ui/templates/`; autoescaping is on for everything. Globals: `static(name)`
(the versioned URL of a file under `admin_ui/static/`) and the formatting filters of
`admin_ui.formatting`. An undefined variable is an error, so a template mistake fails its test
instead of rendering an empty cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from admin_ui.formatting import FILTERS
from admin_ui.static_files import static_assets

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def console_environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters.update(FILTERS)
    environment.globals["static"] = static_assets().url
    return environment


def template_config() -> TemplateConfig[Any]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(console_environment()))
