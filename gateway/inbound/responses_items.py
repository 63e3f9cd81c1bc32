"""`GET /v1/responses/{id}/input_items`: the conversation a stored response was given, as
OpenAI's list of items, paged by `limit`, `order` and `after`.

Items the client sent without an id get one made from the response's id and their position, so
the same item has the same id on every read and `after` pages reliably; a message whose content
is a string is shown with one text part, as OpenAI lists it.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs

from gateway.errors import invalid_request

DEFAULT_LIMIT: Final = 20
MOST: Final = 100


class Page:
    """The paging parameters of the query string, checked."""

    __slots__ = ("after", "limit", "order")

    def __init__(self, query: bytes) -> None:
        try:
            values = parse_qs(query.decode("latin-1"), max_num_fields=20)
        except ValueError:
            raise invalid_request("The query string has too many parameters.") from None
        limit = _one(values, "limit") or str(DEFAULT_LIMIT)
        if not limit.isdigit() or not 1 <= int(limit) <= MOST:
            raise invalid_request(
                f"Invalid 'limit': expected an integer from 1 to {MOST}.",
                param="limit",
                code="invalid_value",
            )
        order = _one(values, "order") or "desc"
        if order not in ("asc", "desc"):
            raise invalid_request(
                "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
            )
        self.limit = int(limit)
        self.order = order
        self.after = _one(values, "after")


def input_items_page(response_id: str, items: list[Any], page: Page) -> dict[str, Any]:
    listed = [_listed(response_id, index, item) for index, item in enumerate(items)]
    if page.order == "desc":
        listed.reverse()
    if page.after is not None:
        ids = [item.get("id") for item in listed]
        if page.after not in ids:
            raise invalid_request(
                f"Invalid 'after': no input item '{page.after[:80]}' in this response.",
                param="after",
                code="invalid_value",
            )
        listed = listed[ids.index(page.after) + 1 :]
    data = listed[: page.limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(listed) > page.limit,
    }


def _listed(response_id: str, index: int, item: Any) -> dict[str, Any]:
    shown = dict(item) if isinstance(item, dict) else {"type": "unknown", "value": item}
    kind = shown.setdefault("type", "message")
    shown.setdefault("id", f"item_{response_id.removeprefix('resp_')}_{index}")
    if kind == "message":
        shown.setdefault("status", "completed")
        content = shown.get("content")
        if isinstance(content, str):
            part = "output_text" if shown.get("role") == "assistant" else "input_text"
            shown["content"] = [{"type": part, "text": content}]
    return shown


def _one(values: dict[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    return given[-1] if given else None
