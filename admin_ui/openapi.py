"""The admin API's OpenAPI document, served at `/admin/api/openapi.json`.

Litestar derives paths, methods and path parameters from the routes themselves, so the document
cannot drift from what is served. The handlers read their JSON bodies and query parameters
themselves (to answer every problem in OpenAI's error shape with its `param`), so those are
described here, next to each route's decorator, through `described(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    RequestBody,
    Schema,
    SecurityScheme,
)

JsonSchema = dict[str, Any]

OPENAPI_PATH = "/admin/api"
"""Where the document is served: `OPENAPI_PATH + "/openapi.json"`."""

ERROR_SCHEMA: JsonSchema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_ERRORS = {
    "400": "The request is not valid; `param` names what is wrong.",
    "401": "No key, or a key that is not valid.",
    "403": "The key may not do this.",
    "404": "No such object, or one of another workspace.",
}


def nullable(schema: JsonSchema) -> JsonSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def text(max_length: int | None = None, **extra: Any) -> JsonSchema:
    schema: JsonSchema = {"type": "string", **extra}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def strings() -> JsonSchema:
    return {"type": "array", "items": {"type": "string"}}


def object_schema(
    properties: dict[str, JsonSchema] | None = None,
    *,
    required: tuple[str, ...] = (),
    closed: bool = False,
) -> JsonSchema:
    schema: JsonSchema = {"type": "object"}
    if properties:
        schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter a handler reads from `request.query_params`."""

    name: str
    description: str
    schema: JsonSchema


def described(
    *,
    body: JsonSchema | None = None,
    query: tuple[Query, ...] = (),
    path: tuple[Query, ...] = (),
    conflict: bool = False,
    success: tuple[str | dict[str, JsonSchema], str] | None = None,
    more_errors: dict[str, str] | None = None,
) -> type[Operation]:
    """An `operation_class` for a route decorator: Litestar's generated operation plus the JSON
    body, the query parameters and the error answers the handler gives; `path` describes path
    parameters better than their type alone (their values, what they are); `success` is the
    media type (or media types, each with its schema) and description of a 200 answer Litestar
    cannot describe (a stream), `more_errors` the statuses beyond the usual 400-404 with what
    each means."""

    @dataclass
    class DescribedOperation(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = RequestBody(
                    content={"application/json": OpenAPIMediaType(schema=_schema(body))},
                    required=True,
                )
            if query:
                self.parameters = [
                    *(self.parameters or []),
                    *(
                        Parameter(
                            name=item.name,
                            param_in="query",
                            required=False,
                            description=item.description,
                            schema=_schema(item.schema),
                        )
                        for item in query
                    ),
                ]
            if path:
                told = {item.name: item for item in path}
                self.parameters = [
                    Parameter(
                        name=parameter.name,
                        param_in="path",
                        required=True,
                        description=told[parameter.name].description,
                        schema=_schema(told[parameter.name].schema),
                    )
                    if isinstance(parameter, Parameter)
                    and parameter.param_in == "path"
                    and parameter.name in told
                    else parameter
                    for parameter in self.parameters or []
                ]
            if success is not None:
                media_types, description = success
                if isinstance(media_types, str):
                    media_types = {media_types: {"type": "string"}}
                self.responses = {
                    **(self.responses or {}),
                    "200": OpenAPIResponse(
                        description=description,
                        content={
                            media_type: OpenAPIMediaType(schema=_schema(schema))
                            for media_type, schema in media_types.items()
                        },
                    ),
                }
            errors = dict(_ERRORS)
            if conflict:
                errors["409"] = "The change conflicts with the stored state."
            errors.update(more_errors or {})
            self.responses = {
                **(self.responses or {}),
                **{
                    status: OpenAPIResponse(
                        description=reason,
                        content={
                            "application/json": OpenAPIMediaType(schema=_schema(ERROR_SCHEMA))
                        },
                    )
                    for status, reason in errors.items()
                },
            }

    return DescribedOperation


def _schema(schema: JsonSchema) -> Schema:
    """A JSON schema as Litestar's spec object; nested values are written out as they are."""
    return _RawSchema(raw=schema)


@dataclass
class _RawSchema(Schema):
    raw: JsonSchema | None = None

    def to_schema(self) -> dict[str, Any]:
        return dict(self.raw or {})


class _AdminDocument(JsonRenderPlugin):
    """The JSON document, with links from each create to the operations on what it created."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, with_links(openapi_schema))


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add OpenAPI links: a `POST <collection>` answering 201 with the new object's `id` feeds
    every operation under `<collection>/{<param>}`, so clients and fuzzers can follow them."""
    paths: dict[str, Any] = document.get("paths", {})
    for collection, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links: dict[str, Any] = {}
        prefix = collection.rstrip("/") + "/{"
        for path, item in paths.items():
            if not path.startswith(prefix):
                continue
            param = path[len(prefix) :].split("}", 1)[0]
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {param: "$response.body#/id"},
                    }
        if links:
            created["links"] = links
    return document


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Steerway admin API",
        version=version,
        description=(
            "Workspaces, virtual keys, console users, the audit log, steering rules, their "
            "simulation and replay, and recorded traces. Every call takes `Authorization: Bearer "
            "<admin key>`, or the console's session cookie (`steerway_session`, from "
            "`POST /admin/signin`) with the session's `X-CSRF-Token` header on every change; "
            'errors have OpenAI\'s shape, `{"error": {"message", "type", "param", "code"}}`.'
        ),
        path=OPENAPI_PATH,
        render_plugins=[_AdminDocument()],
        components=Components(
            security_schemes={
                "adminKey": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="The master key or an admin (role `master`) virtual key.",
                )
            },
        ),
        security=[{"adminKey": []}],
        use_handler_docstrings=True,
        create_examples=False,
    )
