"""The console's user pages under `/admin/users`: the list, adding a user (a one-time link to set
the password shown once), and a user's page to change a role, disable or enable the account and
hand out a new password link.

Every page goes through the functions behind `/admin/api/users` (`admin_ui.users_api`), so a page
shows whom the API would list and refuses what the API refuses, with the same message. A password
link is only ever in the answer to the form that made it: never in a URL, a redirect or a later
page, and that answer is not kept by the browser (`Cache-Control: no-store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import users_api
from admin_ui.console_auth import permission_denied, principal
from admin_ui.form_fields import FormState, place_error, read_form
from admin_ui.page_views import WorkspaceLabel, time_view, workspace_labels
from admin_ui.pages import NO_STORE, page
from admin_ui.principals import Principal
from admin_ui.users import ROLES, User
from admin_ui.workspace_operations import visible_workspaces
from gateway.errors import GatewayError

AnyRequest = Request[Any, Any, Any]

NAV: Final = "users"
CREATE_FIELDS: Final = ("email", "name", "workspace", "role", "operator")
NOTICES: Final = {
    "roles": "The role is saved. It applies from the user's next request.",
    "disabled": "The account is disabled: its sessions end and it cannot sign in.",
    "enabled": "The account is enabled again.",
}


@dataclass(frozen=True, slots=True)
class RoleView:
    workspace_id: str
    workspace: str
    """The workspace's name (or slug)."""
    slug: str
    role: str
    can_change: bool


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str
    name: str
    operator: bool
    status: str
    tone: str
    roles: list[RoleView]
    created: Any
    last_sign_in: Any
    password_changed: Any
    is_you: bool


_TONES: Final = {"active": "ok", "invited": "warning", "disabled": "neutral"}


def _status(user: User) -> str:
    if user.disabled:
        return "disabled"
    return "active" if user.has_password else "invited"


def user_row(user: User, who: Principal, labels: dict[str, WorkspaceLabel]) -> UserRow:
    """A user as `who` sees it: roles in `who`'s workspaces only."""
    visible = who.workspace_ids
    own_roles_fixed = user.user_id == who.user_id and not who.is_operator
    roles = [
        RoleView(
            workspace_id=m.workspace_id,
            workspace=labels[m.workspace_id].name if m.workspace_id in labels else m.slug,
            slug=m.slug,
            role=m.role,
            can_change=who.can("users.write", m.workspace_id) and not own_roles_fixed,
        )
        for m in user.memberships
        if visible is None or m.workspace_id in visible
    ]
    status = _status(user)
    return UserRow(
        id=user.user_id,
        email=user.email,
        name=user.display_name,
        operator=user.is_operator,
        status=status,
        tone=_TONES[status],
        roles=roles,
        created=time_view(user.created_at),
        last_sign_in=time_view(user.last_sign_in_at),
        password_changed=time_view(user.password_changed_at),
        is_you=user.user_id == who.user_id,
    )


def _managed_workspaces(who: Principal, labels: dict[str, WorkspaceLabel]) -> list[WorkspaceLabel]:
    """The workspaces whose users `who` may add or change roles in."""
    return [label for ws, label in labels.items() if who.can("users.write", ws)]


def _may_add_users(who: Principal) -> bool:
    return who.is_operator or any(who.can("users.write", ws) for ws in who.roles)


def _link_context(link: dict[str, Any] | None) -> dict[str, Any]:
    if link is None:
        return {"link_url": None, "link_expires": None}
    expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    return {"link_url": link["url"], "link_expires": time_view(expires)}


def _no_store(response: Response[Any]) -> Response[Any]:
    response.headers["Cache-Control"] = NO_STORE
    return response


async def _labels(request: AnyRequest) -> dict[str, WorkspaceLabel]:
    return workspace_labels(await visible_workspaces(request))


def create_body(values: dict[str, Any]) -> dict[str, Any]:
    """The API body for the add-user form: a role in the chosen workspace, if any."""
    body: dict[str, Any] = {"email": values["email"].strip()}
    if values["name"].strip():
        body["name"] = values["name"].strip()
    if values["workspace"]:
        body["roles"] = {values["workspace"]: values["role"]}
    if values["operator"]:
        body["operator"] = True
    return body


async def _new_page(request: AnyRequest, form: FormState, *, status_code: int = 200) -> Any:
    who = principal(request)
    managed = _managed_workspaces(who, await _labels(request))
    choices = [] if not who.is_operator else [("", "No workspace (operators only)")]
    choices += [(w.slug, w.name if w.name == w.slug else f"{w.name} ({w.slug})") for w in managed]
    return await page(
        request,
        "users/new.html",
        nav_active=NAV,
        status_code=status_code,
        form=form,
        workspace_choices=choices,
        role_choices=[(role, role.capitalize()) for role in ROLES],
        offer_operator=who.can("users.operator"),
    )


async def _detail_page(
    request: AnyRequest,
    user: User,
    *,
    error: str = "",
    status_code: int = 200,
) -> Any:
    who = principal(request)
    labels = await _labels(request)
    row = user_row(user, who, labels)
    held = {role.workspace_id for role in row.roles}
    addable = [w for w in _managed_workspaces(who, labels) if w.workspace_id not in held]
    controls_account = not row.is_you and _controls_account(who, user)
    return await page(
        request,
        "users/detail.html",
        nav_active=NAV,
        status_code=status_code,
        person=row,
        roles=ROLES,
        addable=addable if not row.is_you or who.is_operator else [],
        can_disable=controls_account,
        can_link=(row.is_you or controls_account) and not user.disabled,
        notice=NOTICES.get(request.query_params.get("saved", ""), ""),
        error=error,
    )


def _controls_account(who: Principal, user: User) -> bool:
    """What `users_api` requires for account-wide changes, asked rather than enforced."""
    if user.is_operator and not who.can("users.operator"):
        return False
    if not user.memberships:
        return who.is_operator
    return all(who.can("users.write", m.workspace_id) for m in user.memberships)


async def _change(request: AnyRequest, user_id: str, body: dict[str, Any], saved: str) -> Any:
    """Apply a change through the API's function; back to the user's page, or the page with
    the API's refusal on it."""
    try:
        await users_api.update_user(request, user_id, body)
    except GatewayError as error:
        if error.status in (403, 404):
            raise
        user = await users_api.visible_user(request, user_id)
        return await _detail_page(request, user, error=error.message, status_code=400)
    return Redirect(f"/admin/users/{user_id}?saved={saved}", status_code=303)


class UserPages(Controller):
    path = "/users"
    include_in_schema = False

    @get("/")
    async def list_users(self, request: AnyRequest) -> Any:
        workspace = request.query_params.get("workspace", "").strip()
        users = await users_api.visible_users(request, workspace or None)
        who = principal(request)
        labels = await _labels(request)
        return await page(
            request,
            "users/list.html",
            nav_active=NAV,
            rows=[user_row(user, who, labels) for user in users],
            workspace=workspace,
            can_create=_may_add_users(who),
        )

    @get("/new")
    async def new_user(self, request: AnyRequest) -> Any:
        who = principal(request)
        if not _may_add_users(who):
            raise permission_denied(who, "users.write")
        values = {name: "" for name in CREATE_FIELDS}
        values["role"] = "viewer"
        chosen = request.query_params.get("workspace", "")
        managed = _managed_workspaces(who, await _labels(request))
        for label in managed:
            if chosen in (label.slug, label.workspace_id) or (not chosen and not who.is_operator):
                values["workspace"] = label.slug
                break
        return await _new_page(request, FormState(values))

    @post("/new", status_code=200)
    async def create_user(self, request: AnyRequest) -> Any:
        form = FormState(read_form(await request.form(), CREATE_FIELDS))
        try:
            created = await users_api.create_user(request, create_body(form.values))
        except GatewayError as error:
            if error.status == 403:
                raise
            place_error(form, error, ("email", "name", "roles", "operator"))
            if "roles" in form.errors:
                form.errors["role"] = form.errors.pop("roles")
            return await _new_page(request, form, status_code=400)
        user = await users_api.visible_user(request, created["id"])
        response = await page(
            request,
            "users/link.html",
            nav_active=NAV,
            person=user_row(user, principal(request), await _labels(request)),
            **_link_context(created.get("password_link")),
            created=True,
        )
        return _no_store(response)

    @get("/{user_id:str}")
    async def user_detail(self, request: AnyRequest, user_id: str) -> Any:
        return await _detail_page(request, await users_api.visible_user(request, user_id))

    @post("/{user_id:str}/roles", status_code=303)
    async def change_role(self, request: AnyRequest, user_id: str) -> Any:
        form = await request.form()
        workspace, role = str(form.get("workspace", "")), str(form.get("role", ""))
        return await _change(request, user_id, {"roles": {workspace: role or None}}, "roles")

    @post("/{user_id:str}/disable", status_code=303)
    async def disable_user(self, request: AnyRequest, user_id: str) -> Any:
        return await _change(request, user_id, {"disabled": True}, "disabled")

    @post("/{user_id:str}/enable", status_code=303)
    async def enable_user(self, request: AnyRequest, user_id: str) -> Any:
        return await _change(request, user_id, {"disabled": False}, "enabled")

    @post("/{user_id:str}/password-link", status_code=200)
    async def password_link(self, request: AnyRequest, user_id: str) -> Any:
        try:
            link = await users_api.password_link(request, user_id)
        except GatewayError as error:
            if error.status in (403, 404):
                raise
            user = await users_api.visible_user(request, user_id)
            return await _detail_page(request, user, error=error.message, status_code=400)
        user = await users_api.visible_user(request, user_id)
        response = await page(
            request,
            "users/link.html",
            nav_active=NAV,
            person=user_row(user, principal(request), await _labels(request)),
            **_link_context(link),
            created=False,
        )
        return _no_store(response)
