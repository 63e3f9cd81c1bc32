"""The console's key pages under `/admin/keys`: the list with its filters, create (the plaintext
shown once), detail with edit, revoke.

Every page reads and writes through `admin_ui.key_operations`, the functions behind
`/admin/api/keys`, so a page shows what the API answers and refuses what the API refuses, with the
API's message next to the field it concerns. The plaintext of a new key is only ever in the answer
to the create form: never in a URL, a redirect, a log line or any later page, and that answer is
not kept by the browser or any cache (`Cache-Control: no-store`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import key_operations as operations
from admin_ui.auth import workspace_scope
from admin_ui.form_fields import (
    LIMIT_TEXT_FIELDS,
    FormState,
    FormValues,
    budgets_from,
    changed,
    limit_values,
    limits_from,
    place_error,
    read_form,
    text_list,
)
from admin_ui.page_access import can, ensure_can
from admin_ui.page_views import (
    budget_timezone,
    guardrail_choices,
    key_row,
    served_models,
    workspace_choices,
    workspace_labels,
)
from admin_ui.pages import NO_STORE, page
from admin_ui.workspace_operations import invalid_field, visible_workspace, visible_workspaces
from gateway.errors import GatewayError, invalid_request
from gateway.keys.limits import WINDOWS, InvalidField
from gateway.keys.store import KeyInfo

AnyRequest = Request[Any, Any, Any]

NAV = "keys"
STATES = ("active", "expired", "revoked", "all")
DEFAULT_STATE = "active"
TEXT_FIELDS = (
    "name",
    "workspace",
    "role",
    "allowed_model_patterns",
    *LIMIT_TEXT_FIELDS,
    "default_tags",
    "expires_at",
    "metadata",
)
EDIT_TEXT_FIELDS = tuple(name for name in TEXT_FIELDS if name != "workspace")
LIST_FIELDS = ("allowed_models", "guardrails")
ERROR_FIELDS = (
    "name",
    "workspace",
    "role",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budgets",
    *(f"budget_{window}" for window in WINDOWS),
    "default_tags",
    "guardrails",
    "expires_at",
    "metadata",
)
EDIT_ERROR_FIELDS = tuple(name for name in ERROR_FIELDS if name != "workspace")
"""The fields of a form without a workspace to choose: the edit form, and a workspace's admin's
create form."""
SNIPPET_FALLBACK_MODEL = "gpt-4o-mini"


# --- form values <-> API bodies -----------------------------------------------------------------


def empty_values() -> FormValues:
    values: FormValues = {name: "" for name in TEXT_FIELDS}
    values.update({name: [] for name in LIST_FIELDS})
    values["role"] = "user"
    return values


def key_values(key: KeyInfo, served: list[str]) -> FormValues:
    """A stored key as its edit form shows it: allowed models the config serves are ticked
    boxes, other patterns are typed out."""
    allowed = key.allowed_models or ()
    return {
        "name": key.name,
        "role": key.role,
        "allowed_models": [model for model in served if model in allowed],
        "allowed_model_patterns": ", ".join(m for m in allowed if m not in served),
        **limit_values(key.rpm_limit, key.tpm_limit, key.max_parallel, key.budgets),
        "default_tags": ", ".join(key.default_tags),
        "guardrails": list(key.guardrails),
        "expires_at": _expiry_text(key.expires_at),
        "metadata": _metadata_text(key.metadata),
    }


def _expiry_text(value: datetime | None) -> str:
    """In UTC, as a `datetime-local` input takes it (seconds only when there are some)."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M" if utc.second == 0 else "%Y-%m-%dT%H:%M:%S")


def _metadata_text(metadata: dict[str, Any]) -> str:
    if not metadata:
        return ""
    return msgspec.json.format(msgspec.json.encode(metadata), indent=2).decode()


def key_body(values: FormValues) -> tuple[dict[str, Any], list[str]]:
    """The API body for a form's values (every key field; None where the form leaves the
    default) and the window of each budget in it, to place an error on its row."""
    models = [*values.get("allowed_models", []), *text_list(values["allowed_model_patterns"])]
    body: dict[str, Any] = {
        "name": values["name"],
        "role": values["role"],
        "allowed_models": models or None,
        **limits_from(values),
        "default_tags": text_list(values["default_tags"]),
        "guardrails": list(values.get("guardrails", [])),
        "expires_at": values["expires_at"].strip() or None,
        "metadata": _metadata(values["metadata"]),
    }
    return body, budgets_from(values)[1]


def _metadata(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return msgspec.json.decode(text.encode("utf-8", "surrogatepass"))
    except (msgspec.DecodeError, UnicodeEncodeError) as error:
        raise invalid_field(InvalidField("metadata", f"not valid JSON ({error})")) from None


def sdk_snippet(base_url: str, model: str, plaintext: str) -> str:
    return (
        "from openai import OpenAI\n"
        "\n"
        f'client = OpenAI(base_url="{base_url}", api_key="{plaintext}")\n'
        "response = client.chat.completions.create(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(response.choices[0].message.content)\n"
    )


def snippet_model(key: KeyInfo, served: list[str]) -> str:
    """A model the key may use: the first the config serves, else a plain name it allows."""
    for model in served:
        if key.allows_model(model):
            return model
    for pattern in key.allowed_models or ():
        if not set(pattern) & set("*?["):
            return pattern
    return SNIPPET_FALLBACK_MODEL


# --- page pieces ---------------------------------------------------------------------------------


def _state_filter(request: AnyRequest) -> str:
    state = request.query_params.get("state") or DEFAULT_STATE
    if state not in STATES:
        raise invalid_request(
            f"'state' must be one of {', '.join(STATES)}.", param="state", code="invalid_value"
        )
    return state


def _matches(key: KeyInfo, state: str, search: str, now: datetime) -> bool:
    if state != "all" and key.status(now) != state:
        return False
    needle = search.casefold()
    return needle in key.name.casefold() or needle in key.display_prefix.casefold()


async def _form_page(
    request: AnyRequest,
    template: str,
    form: FormState,
    *,
    choose_workspace: bool,
    status_code: int = 200,
    **context: Any,
) -> Response[Any]:
    served = served_models(request)
    choices = []
    if choose_workspace and workspace_scope(request) is None:
        choices = workspace_choices(await visible_workspaces(request))
    return await page(
        request,
        template,
        nav_active=NAV,
        status_code=status_code,
        form=form,
        windows=WINDOWS,
        model_choices=[(model, model, "") for model in served],
        guardrail_choices=guardrail_choices(request),
        budget_timezone=budget_timezone(request),
        workspace_choices=choices,
        **context,
    )


async def _detail_page(
    request: AnyRequest, key: KeyInfo, form: FormState, *, status_code: int = 200
) -> Response[Any]:
    labels = workspace_labels(await visible_workspaces(request))
    notice = ""
    if request.query_params.get("revoked"):
        notice = "revoked"
    elif request.query_params.get("saved") in ("0", "1"):
        notice = "saved" if request.query_params["saved"] == "1" else "unchanged"
    writable = can(request, "keys.write", key.workspace_id) and key.revoked_at is None
    return await _form_page(
        request,
        "keys/detail.html",
        form,
        choose_workspace=False,
        status_code=status_code,
        key=key_row(key, labels, datetime.now(UTC)),
        can_edit=writable,
        can_revoke=writable,
        notice=notice,
    )


# --- the pages ----------------------------------------------------------------------------------


class KeyPages(Controller):
    path = "/keys"
    include_in_schema = False

    @get("/")
    async def list_keys(self, request: AnyRequest) -> Response[Any]:
        workspace = request.query_params.get("workspace", "").strip()
        state = _state_filter(request)
        search = request.query_params.get("q", "").strip()
        chosen = (await visible_workspace(request, workspace)).workspace_id if workspace else None
        ensure_can(request, "keys.read", chosen)
        keys = await operations.visible_keys(request, workspace or None, include_revoked=True)
        workspaces = await visible_workspaces(request)
        labels = workspace_labels(workspaces)
        now = datetime.now(UTC)
        rows = [key_row(k, labels, now) for k in reversed(keys) if _matches(k, state, search, now)]
        return await page(
            request,
            "keys/list.html",
            nav_active=NAV,
            rows=rows,
            total=len(keys),
            filters={"workspace": workspace, "state": state, "q": search},
            filtered=bool(workspace or search or state != DEFAULT_STATE),
            states=STATES,
            workspace_options=list(labels.values()) if workspace_scope(request) is None else [],
            can_create=can(request, "keys.write", chosen),
        )

    @get("/new")
    async def new_key(self, request: AnyRequest) -> Response[Any]:
        values = empty_values()
        chosen = request.query_params.get("workspace", "").strip()
        workspace_id = None
        if chosen:
            found = await visible_workspace(request, chosen)
            values["workspace"], workspace_id = found.slug, found.workspace_id
        ensure_can(request, "keys.write", workspace_id)
        return await _form_page(request, "keys/new.html", FormState(values), choose_workspace=True)

    @post("/new", status_code=200)
    async def create_key(self, request: AnyRequest) -> Response[Any]:
        values = read_form(await request.form(), TEXT_FIELDS, LIST_FIELDS)
        form = FormState(values)
        workspace = values["workspace"].strip()
        windows: list[str] = []
        try:
            workspace_id = workspace_scope(request)
            if workspace:
                workspace_id = (await visible_workspace(request, workspace)).workspace_id
            ensure_can(request, "keys.write", workspace_id)
            body, windows = key_body(values)
            created = await operations.create_key(request, {**body, "workspace": workspace})
        except GatewayError as error:
            if error.status == 403:
                raise
            shown = ERROR_FIELDS if workspace_scope(request) is None else EDIT_ERROR_FIELDS
            place_error(form, error, shown, windows)
            return await _form_page(
                request, "keys/new.html", form, choose_workspace=True, status_code=400
            )
        key = created.info
        labels = workspace_labels(await visible_workspaces(request))
        base_url = f"{str(request.base_url).rstrip('/')}/v1"
        model = snippet_model(key, served_models(request))
        response = await page(
            request,
            "keys/created.html",
            nav_active=NAV,
            key=key_row(key, labels, datetime.now(UTC)),
            secret=created.plaintext,
            snippet=sdk_snippet(base_url, model, created.plaintext),
        )
        response.headers["Cache-Control"] = NO_STORE
        return response

    @get("/{key_id:str}")
    async def key_detail(self, request: AnyRequest, key_id: str) -> Response[Any]:
        key = await operations.visible_key(request, key_id)
        ensure_can(request, "keys.read", key.workspace_id)
        return await _detail_page(request, key, FormState(key_values(key, served_models(request))))

    @post("/{key_id:str}", status_code=303)
    async def update_key(self, request: AnyRequest, key_id: str) -> Response[Any]:
        current = await operations.visible_key(request, key_id)
        ensure_can(request, "keys.write", current.workspace_id)
        values = read_form(await request.form(), EDIT_TEXT_FIELDS, LIST_FIELDS)
        form = FormState(values)
        windows: list[str] = []
        try:
            body, windows = key_body(values)
            stored, _ = key_body(key_values(current, served_models(request)))
            changes = changed(body, stored)
            if changes:
                await operations.update_key(request, key_id, changes)
        except GatewayError as error:
            if error.status in (403, 404):
                raise
            place_error(form, error, EDIT_ERROR_FIELDS, windows)
            return await _detail_page(request, current, form, status_code=400)
        return Redirect(f"/admin/keys/{key_id}?saved={1 if changes else 0}", status_code=303)

    @get("/{key_id:str}/revoke")
    async def confirm_revoke(self, request: AnyRequest, key_id: str) -> Response[Any]:
        key = await operations.visible_key(request, key_id)
        ensure_can(request, "keys.write", key.workspace_id)
        labels = workspace_labels(await visible_workspaces(request))
        return await page(
            request,
            "keys/revoke.html",
            nav_active=NAV,
            key=key_row(key, labels, datetime.now(UTC)),
        )

    @post("/{key_id:str}/revoke", status_code=303)
    async def revoke_key(self, request: AnyRequest, key_id: str) -> Response[Any]:
        key = await operations.visible_key(request, key_id)
        ensure_can(request, "keys.write", key.workspace_id)
        await operations.revoke_key(request, key.key_id)
        return Redirect(f"/admin/keys/{key.key_id}?revoked=1", status_code=303)
