"""What the console's list pages share: reading the page's URL as the list API reads it, the
filter bar, paging by cursor, and a refused filter shown on the page.

A list page's URL is the list API's query (`admin_ui.search_params` names every parameter), plus
the page's own `refresh`. A GET form sends its empty fields too; those are passed over. With no
time range in the URL the top bar's default range applies. A value the API would refuse with a
400 (or a workspace the viewer may not see, 404) gives the page with that status and the API's
message beside the filter bar, never an error without the form to correct it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Request
from markupsafe import Markup, escape

from admin_ui.auth import workspace_scope
from admin_ui.formatting import MISSING
from admin_ui.pages import DEFAULT_RANGE, url_with
from admin_ui.search_api import read_list_query
from admin_ui.search_params import ListQuery, ListSpec, bad
from admin_ui.state import gateway_of
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.errors import GatewayError
from gateway.keys.store import KeyInfo, KeyStore, Workspace
from telemetry.search import InvalidCursor, Page

AnyRequest = Request[Any, Any, Any]
Search = Callable[..., Awaitable[Page[Any]]]

PAGE_OWN: Final = ("refresh",)
"""Parameters of the page, not of the list."""
CURSOR: Final = "cursor"
RANGE_PARAMETERS: Final = ("since", "until", "last")
SHOWN_ERRORS: Final = (400, 404)
"""Statuses of a refused query that the page answers with itself, the form kept."""
ANY: Final = ("", "any")
FLAG_CHOICES: Final = (ANY, ("true", "yes"), ("false", "no"))
PAGE_SIZES: Final = (("", "50"), ("100", "100"), ("200", "200"))
SORTS: Final = (("", "Newest"), ("duration", "Slowest"), ("cost", "Most expensive"))
SORT_TEXTS: Final = {
    "newest": "newest first",
    "duration": "slowest first",
    "cost": "most expensive first (where the cost is known)",
}


# --- the URL -------------------------------------------------------------------------------------


def query_items(request: AnyRequest, *leave_out: str) -> list[tuple[str, str]]:
    """The URL's parameters as the list reads them: empty ones and `leave_out` passed over."""
    return [
        (name, value)
        for name, value in request.query_params.multi_items()
        if value != "" and name not in leave_out
    ]


def list_items(request: AnyRequest) -> list[tuple[str, str]]:
    """What the list query reads: the URL's parameters and, without a range, the default one."""
    items = query_items(request, *PAGE_OWN)
    if not any(name in RANGE_PARAMETERS for name, _ in items):
        items.append(("last", DEFAULT_RANGE))
    return items


class FilterLinks:
    """Values in rows that filter the list by themselves: this page's URL, from its first page,
    with the value's parameter set to it alone. The rest of the URL is encoded once per
    parameter, not once per link (a page of 50 rows holds hundreds)."""

    def __init__(self, request: AnyRequest, path: str) -> None:
        self._path = path
        self._items = query_items(request, CURSOR)
        self._bases: dict[str, str] = {}

    def url(self, name: str, value: Any) -> str:
        base = self._bases.get(name)
        if base is None:
            base = self._bases[name] = urlencode([(n, v) for n, v in self._items if n != name])
        chosen = urlencode([(name, str(value))])
        return f"{self._path}?{base}&{chosen}" if base else f"{self._path}?{chosen}"

    def link(self, name: str, value: Any, text: Any = None, cls: str = "") -> Markup:
        """`<a>` to the list filtered by `value`, showing `text` (the value by default)."""
        if value is None or value == "":
            return Markup(MISSING)
        # Formatting by hand: Markup.format costs ten times as much, and a page has hundreds.
        shown = value if text is None else text
        return Markup(
            f'<a class="filter-link {escape(cls)}" href="{escape(self.url(name, value))}" '
            f'title="Only {escape(name.replace("_", " "))} {escape(value)}">{escape(shown)}</a>'
        )


@dataclass(frozen=True, slots=True)
class Paging:
    older_url: str | None
    """The next page's URL, or None on the last page."""
    newest_url: str | None
    """The first page's URL, when this is a later page."""


def paging(request: AnyRequest, path: str, next_cursor: str | None) -> Paging:
    later_page = any(name == CURSOR for name, _ in query_items(request))
    return Paging(
        older_url=None
        if next_cursor is None
        else url_with(path, [*query_items(request, CURSOR), (CURSOR, next_cursor)]),
        newest_url=url_with(path, query_items(request, CURSOR)) if later_page else None,
    )


# --- reading a page of the list ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListRead:
    rows: list[Any]
    next_cursor: str | None
    query: ListQuery[Any] | None
    """None when the query was refused."""
    error: GatewayError | None

    @property
    def status_code(self) -> int:
        return 200 if self.error is None else self.error.status


async def read_query(request: AnyRequest, spec: ListSpec[Any]) -> ListQuery[Any]:
    """The page's URL read as the list API reads its query (GatewayError when refused)."""
    return await read_list_query(request, spec, items=list_items(request))


async def read_list(request: AnyRequest, spec: ListSpec[Any], search: Search) -> ListRead:
    """One page of the list `spec` through `search`, the function behind the JSON API."""
    try:
        query = await read_query(request, spec)
        try:
            page = await search(
                gateway_of(request).engine,
                query.filters,
                scope=workspace_scope(request),
                sort=query.sort,
                limit=query.limit,
                cursor=query.cursor,
            )
        except InvalidCursor as error:
            raise bad("cursor", f"is not valid: {error}", "invalid_cursor") from None
    except GatewayError as error:
        if error.status not in SHOWN_ERRORS:
            raise
        return ListRead(rows=[], next_cursor=None, query=None, error=error)
    return ListRead(rows=page.rows, next_cursor=page.next_cursor, query=query, error=None)


# --- the filter bar ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One input of a filter bar, named as the list API's parameter."""

    name: str
    label: str
    kind: str = "text"
    """text | number | choice (a select) | checks (checkboxes: any of the ticked values)."""
    choices: tuple[tuple[str, str], ...] = ()
    """(value, label) of a choice or checks field; a choice's first is its default."""
    placeholder: str = "any"
    size: int = 12
    unit: str = ""
    suggest: str = ""
    """The id of a datalist of likely values."""
    more: bool = False
    """Under "More filters"."""
    hint: str = ""


KEY_FIELD: Final = Field("key", "Key", kind="choice")
"""The key choice: its choices are the keys the viewer may see, filled in per page."""


def flag(name: str, label: str, *, more: bool = False) -> Field:
    return Field(name, label, kind="choice", choices=FLAG_CHOICES, more=more)


@dataclass(frozen=True, slots=True)
class FieldView:
    field: Field
    values: list[str]
    error: str | None
    """The message when the list refused this field's value."""

    @property
    def id(self) -> str:
        return f"filter-{self.field.name}"

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""

    def choices(self) -> list[tuple[str, str]]:
        """The field's choices, plus any value of the URL it does not list (kept, not lost)."""
        known = list(self.field.choices)
        values = {value for value, _ in known}
        return known + [(v, v) for v in self.values if v not in values]


@dataclass(frozen=True, slots=True)
class FilterBar:
    action: str
    fields: list[FieldView]
    more: list[FieldView]
    hidden: list[tuple[str, str]]
    """The top bar's values and a custom range: kept when the form is sent."""
    suggestions: dict[str, list[str]]
    error: GatewayError | None
    clear_url: str
    more_set: int = 0
    """How many of the fields under "More filters" have a value."""
    active: bool = False


def filter_bar(
    request: AnyRequest,
    path: str,
    fields: Sequence[Field],
    *,
    error: GatewayError | None = None,
    suggestions: dict[str, list[str]] | None = None,
) -> FilterBar:
    values: dict[str, list[str]] = {}
    for name, value in query_items(request):
        values.setdefault(name, []).append(value)
    views = [
        FieldView(
            field=f,
            values=values.get(f.name, []),
            error=error.message if error is not None and error.param == f.name else None,
        )
        for f in fields
    ]
    named = {f.name for f in fields}
    kept = ("workspace", *RANGE_PARAMETERS, *PAGE_OWN)
    hidden = [(n, v) for n, v in query_items(request) if n in kept and n not in named]
    filtering = [n for n, _ in query_items(request, CURSOR, *kept) if n not in ("sort", "limit")]
    more = [view for view in views if view.field.more]
    return FilterBar(
        action=path,
        fields=[view for view in views if not view.field.more],
        more=more,
        hidden=hidden,
        suggestions=suggestions or {},
        error=error,
        clear_url=url_with(path, [(n, v) for n, v in query_items(request) if n in kept]),
        more_set=sum(1 for view in more if view.values),
        active=bool(filtering),
    )


# --- names shown in rows and choices -------------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """Workspaces and keys by id, each read in one query per page."""

    workspaces: list[Workspace]
    keys: list[KeyInfo]
    slugs: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slugs", {w.workspace_id: w.slug for w in self.workspaces})

    def workspace_name(self, workspace_id: str) -> str:
        return self.slugs.get(workspace_id, workspace_id)

    def key_choices(self, *, operator: bool) -> tuple[tuple[str, str], ...]:
        slugs = self.slugs
        several = operator and len({k.workspace_id for k in self.keys}) > 1
        keys = sorted(self.keys, key=lambda k: (k.name.lower(), k.key_id))
        choices = [ANY]
        if operator:
            choices.append((MASTER_KEY_INFO.key_id, MASTER_KEY_INFO.name))
        for key in keys:
            label = key.name
            if several:
                label += f" · {slugs.get(key.workspace_id, key.workspace_id)}"
            if key.revoked_at is not None:
                label += " (revoked)"
            choices.append((key.key_id, label))
        return tuple(choices)


async def directory(request: AnyRequest) -> Directory:
    store = KeyStore(gateway_of(request).engine)
    scope = workspace_scope(request)
    return Directory(
        workspaces=await store.list_workspaces(),
        keys=await store.list(workspace_id=scope, include_revoked=True),
    )


def key_label(key_name: str | None, api_key_id: str | None) -> str | None:
    """A row's key as the lists show it: its name, the master key, or None without a key."""
    if key_name:
        return key_name
    if api_key_id == MASTER_KEY_INFO.key_id:
        return MASTER_KEY_INFO.name
    return None


def page_context(
    request: AnyRequest, path: str, read: ListRead, names: Directory, fields: Sequence[Field]
) -> dict[str, Any]:
    """`list_context` for the viewer of this request, with the running config's suggestions."""
    return list_context(
        request,
        path,
        read,
        names,
        fields,
        scope=workspace_scope(request),
        suggestions=config_suggestions(request),
    )


def config_suggestions(request: AnyRequest) -> dict[str, list[str]]:
    """Likely values of the filters, from the running config and rules: models, providers,
    deployments, guardrails and rule ids."""
    gateway = gateway_of(request)
    config = gateway.config
    found: dict[str, list[str]] = {
        "models": [],
        "providers": [],
        "deployments": [],
        "guardrails": [],
        "rules": [],
    }
    if config is not None:
        found["models"] = config.model_names()
        found["providers"] = list(config.providers)
        found["deployments"] = _unique(
            d.id for route in config.models.values() for d in route.deployments
        )
        found["guardrails"] = list(config.guardrails.definitions)
    if gateway.rulebook is not None:
        found["rules"] = [rule.rule_id for rule in gateway.rulebook.current.rules]
    return found


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- a list page's context -----------------------------------------------------------------------


def list_context(
    request: AnyRequest,
    path: str,
    read: ListRead,
    names: Directory,
    fields: Sequence[Field],
    *,
    scope: str | None,
    suggestions: dict[str, list[str]],
) -> dict[str, Any]:
    """What every list page's template needs: the filter bar, rows, paging and names, for a
    viewer of `scope` (None: every workspace)."""
    keys = replace(KEY_FIELD, choices=names.key_choices(operator=scope is None))
    filtered_workspace = any(name == "workspace" for name, _ in query_items(request))
    links = FilterLinks(request, path)
    return {
        "bar": filter_bar(
            request,
            path,
            [keys if f is KEY_FIELD else f for f in fields],
            error=read.error,
            suggestions=suggestions,
        ),
        "rows": read.rows,
        "paging": paging(request, path, read.next_cursor),
        "workspace_name": names.workspace_name,
        "show_workspace": scope is None and not filtered_workspace,
        "key_label": key_label,
        "filter_url": links.url,
        "filter_link": links.link,
        "sort_text": SORT_TEXTS.get(read.query.sort if read.query else "newest", ""),
    }
