"""`/admin/api/users`: console users and their roles.

A workspace's owners manage its users: they add people with a role there, change or remove
that role, disable an account whose every workspace they own, and hand out one-time links that
set a password. Owners and admins see their workspaces' users, with those workspaces' roles
only. Operators see and manage everyone, and alone make or unmake operators. Nobody disables
themselves, or changes their own roles or operator flag: that is for another owner or operator,
so nobody locks themselves out by mistake.

A user created without a password gets a one-time link instead (`password_link` in the answer),
to hand to them; the password itself never leaves the browser that sets it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from litestar import Controller, Request, get, patch, post
from msgspec import UNSET

from admin_ui.console_auth import access_of, permission_denied, principal, require_permission
from admin_ui.openapi import Query, described, nullable, object_schema, text
from admin_ui.passwords import check_password, hash_password_async
from admin_ui.principals import Principal
from admin_ui.rules import json_object
from admin_ui.serialise import iso_time
from admin_ui.signin_links import RESET_PATH, issue_password_link
from admin_ui.users import ROLES, User, UserExists, parse_email
from admin_ui.workspace_operations import fields_of, invalid_field, visible_workspace
from gateway.errors import GatewayError, invalid_request
from gateway.keys.limits import InvalidField
from gateway.keys.store import UnknownWorkspace

AnyRequest = Request[Any, Any, Any]

CREATE_FIELDS: Final = ("email", "name", "password", "operator", "roles")
UPDATE_FIELDS: Final = ("name", "disabled", "operator", "roles")
READ_ONLY_FIELDS: Final = (
    "object",
    "id",
    "email",
    "status",
    "created_at",
    "last_sign_in_at",
    "password_changed_at",
    "workspaces",
)
_ROLES_SCHEMA: Final = object_schema()
_ROLES_SCHEMA["additionalProperties"] = {"enum": list(ROLES)}
_ROLE_CHANGES_SCHEMA: Final = object_schema()
_ROLE_CHANGES_SCHEMA["additionalProperties"] = nullable({"enum": list(ROLES)})


def user_not_found(user_id: str) -> GatewayError:
    return GatewayError(
        404, f"No user with id '{user_id[:64]}'.", code="user_not_found", param="user_id"
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso_time(value)


def user_item(user: User, viewer: Principal) -> dict[str, Any]:
    """A user as `viewer` may see it: roles in the viewer's workspaces only, never a hash."""
    visible = viewer.workspace_ids
    status = "disabled" if user.disabled else ("active" if user.has_password else "invited")
    return {
        "object": "user",
        "id": user.user_id,
        "email": user.email,
        "name": user.display_name,
        "operator": user.is_operator,
        "status": status,
        "created_at": iso_time(user.created_at),
        "last_sign_in_at": _time(user.last_sign_in_at),
        "password_changed_at": _time(user.password_changed_at),
        "workspaces": [
            {"workspace_id": m.workspace_id, "slug": m.slug, "role": m.role}
            for m in user.memberships
            if visible is None or m.workspace_id in visible
        ],
    }


def _readable_workspaces(who: Principal) -> set[str] | None:
    """Workspaces whose users `who` may list (None: all)."""
    if who.is_operator:
        return None
    return {ws for ws in who.roles if who.can("users.read", ws)}


async def visible_user(request: AnyRequest, user_id: str) -> User:
    who = principal(request)
    found = await access_of(request).users.get(user_id)
    if found is None or not _sees_user(who, found):
        raise user_not_found(user_id)
    return found


def _sees_user(who: Principal, user: User) -> bool:
    if who.is_operator or user.user_id == who.user_id:
        return True
    return any(who.can("users.read", m.workspace_id) for m in user.memberships)


def _require_account_control(request: AnyRequest, target: User) -> Principal:
    """Account-wide changes (name, disabling, password links) touch every workspace the user
    is in: the caller must manage users in each, and be an operator for an operator."""
    who = principal(request)
    if target.is_operator:
        require_permission(request, "users.operator")
    for membership in target.memberships:
        require_permission(request, "users.write", membership.workspace_id)
    if not target.memberships and not who.is_operator:
        raise permission_denied(who, "users.operator")
    return who


async def _roles(request: AnyRequest, value: Any, *, removing: bool) -> dict[str, str | None]:
    """`roles` from a body: workspace (id or slug) to role, each workspace visible to and
    managed by the caller; keys of the answer are workspace ids."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_field(InvalidField("roles", "expected an object of workspace to role"))
    roles: dict[str, str | None] = {}
    for workspace, role in value.items():
        path = f"roles.{workspace[:100]}"
        allowed = (*ROLES, None) if removing else ROLES
        if role not in allowed:
            choices = ", ".join(ROLES) + (" or null to remove" if removing else "")
            raise invalid_field(InvalidField(path, f"expected {choices}"))
        found = await visible_workspace(request, workspace)
        require_permission(request, "users.write", found.workspace_id)
        roles[found.workspace_id] = role
    return roles


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid_field(InvalidField(name, "expected true or false"))
    return value


def _link_base(request: AnyRequest) -> str:
    public = access_of(request).config.public_url
    return public if public else str(request.base_url).rstrip("/")


async def _password_link(request: AnyRequest, user: User) -> dict[str, Any]:
    console = access_of(request)
    who = principal(request)
    token, expires = await issue_password_link(
        console.engine,
        user.user_id,
        hours=console.config.reset_link_hours,
        actor=who.actor,
        address=who.address,
    )
    return {
        "object": "password_link",
        "user_id": user.user_id,
        "url": f"{_link_base(request)}{RESET_PATH}?token={token}",
        "expires_at": iso_time(expires),
    }


async def visible_users(request: AnyRequest, workspace: str | None) -> list[User]:
    """The users the caller may list: of `workspace` (id or slug) only, when given."""
    who = principal(request)
    readable = _readable_workspaces(who)
    if workspace:
        found = await visible_workspace(request, workspace)
        require_permission(request, "users.read", found.workspace_id)
        readable = {found.workspace_id}
    elif readable is not None and not readable:
        raise permission_denied(who, "users.read")
    return await access_of(request).users.list(readable)


async def create_user(request: AnyRequest, fields: dict[str, Any]) -> dict[str, Any]:
    """A new user from an API body (the console's form builds the same body); with a one-time
    `password_link` when it has no password."""
    who = principal(request)
    if not who.is_operator and not any(who.can("users.write", ws) for ws in who.roles):
        raise permission_denied(who, "users.write")
    body = fields_of(fields, CREATE_FIELDS, ())
    try:
        email = parse_email(body.get("email"))
        name = body.get("name") or email.split("@", 1)[0]
        password = body.get("password")
        if password is not None:
            check_password(password, "password", email)
    except InvalidField as error:
        raise invalid_field(error) from None
    operator = _flag(body, "operator") or False
    if operator:
        require_permission(request, "users.operator")
    roles = await _roles(request, body.get("roles"), removing=False)
    if not roles and not operator and not who.is_operator:
        raise invalid_request(
            "Give the user a role in one of your workspaces ('roles').",
            param="roles",
            code="invalid_value",
        )
    password_hash = None if password is None else await hash_password_async(password)
    try:
        created = await access_of(request).users.create(
            email=email,
            name=name,
            password_hash=password_hash,
            is_operator=operator,
            roles={ws: role for ws, role in roles.items() if role is not None},
            actor=who.actor,
            address=who.address,
        )
    except InvalidField as error:
        raise invalid_field(error) from None
    except UnknownWorkspace as error:
        raise invalid_request(str(error), param="roles", code="workspace_not_found") from None
    except UserExists as error:
        raise GatewayError(
            409, f"{str(error).capitalize()}.", code="user_exists", param="email"
        ) from None
    item = user_item(created, who)
    if password_hash is None:
        item["password_link"] = await _password_link(request, created)
    return item


async def update_user(request: AnyRequest, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A change to a user from an API body: its name, disabled state, operator flag, roles."""
    target = await visible_user(request, user_id)
    body = fields_of(fields, UPDATE_FIELDS, READ_ONLY_FIELDS)
    who = principal(request)
    themselves = target.user_id == who.user_id
    disabled = _flag(body, "disabled")
    operator = _flag(body, "operator")
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = body["name"]
    if disabled is not None and disabled != target.disabled:
        if themselves:
            raise _not_yourself("disable your own account")
        changes["disabled"] = disabled
    if ("name" in changes or "disabled" in changes) and not themselves:
        _require_account_control(request, target)
    if operator is not None and operator != target.is_operator:
        require_permission(request, "users.operator")
        if themselves:
            raise _not_yourself("change whether you are an operator")
        changes["is_operator"] = operator
    roles = await _roles(request, body.get("roles"), removing=True)
    if roles:
        if themselves and not who.is_operator:
            raise _not_yourself("change your own roles")
        changes["roles"] = roles
    try:
        updated = await access_of(request).users.update(
            target.user_id,
            name=changes.get("name", UNSET),
            disabled=changes.get("disabled", UNSET),
            is_operator=changes.get("is_operator", UNSET),
            roles=changes.get("roles", UNSET),
            actor=who.actor,
            address=who.address,
        )
    except InvalidField as error:
        raise invalid_field(error) from None
    if updated is None:
        raise user_not_found(user_id)
    return user_item(updated, who)


async def password_link(request: AnyRequest, user_id: str) -> dict[str, Any]:
    """A one-time link that sets the user's password, for the caller to hand over."""
    target = await visible_user(request, user_id)
    if target.user_id != principal(request).user_id:
        _require_account_control(request, target)
    if target.disabled:
        raise invalid_request(
            "The account is disabled; enable it first.", param="user_id", code="user_disabled"
        )
    return await _password_link(request, target)


class UserController(Controller):
    path = "/users"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's users (id or slug).", text()),)
        ),
    )
    async def list_users(self, request: AnyRequest) -> dict[str, Any]:
        listed = await visible_users(request, request.query_params.get("workspace"))
        who = principal(request)
        return {"object": "list", "data": [user_item(user, who) for user in listed]}

    @get("/{user_id:str}", operation_class=described())
    async def get_user(self, request: AnyRequest, user_id: str) -> dict[str, Any]:
        return user_item(await visible_user(request, user_id), principal(request))

    @post(
        "/",
        status_code=201,
        operation_class=described(
            body=object_schema(
                {
                    "email": text(320),
                    "name": text(200),
                    "password": text(1024),
                    "operator": {"type": "boolean"},
                    "roles": _ROLES_SCHEMA,
                },
                required=("email",),
                closed=True,
            ),
            conflict=True,
        ),
    )
    async def create_user(self, request: AnyRequest) -> dict[str, Any]:
        return await create_user(request, await json_object(request))

    @patch(
        "/{user_id:str}",
        operation_class=described(
            body=object_schema(
                {
                    "name": text(200),
                    "disabled": {"type": "boolean"},
                    "operator": {"type": "boolean"},
                    "roles": _ROLE_CHANGES_SCHEMA,
                },
                closed=True,
            )
        ),
    )
    async def update_user(self, request: AnyRequest, user_id: str) -> dict[str, Any]:
        return await update_user(request, user_id, await json_object(request))

    @post("/{user_id:str}/password-link", status_code=201, operation_class=described())
    async def password_link(self, request: AnyRequest, user_id: str) -> dict[str, Any]:
        """A one-time link that sets the user's password (shown only in this answer)."""
        return await password_link(request, user_id)


def _not_yourself(what: str) -> GatewayError:
    return invalid_request(
        f"You cannot {what}; ask another owner or an operator.",
        param="user_id",
        code="own_account",
    )
