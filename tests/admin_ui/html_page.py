"""A console page's HTML read the way a test needs it: elements by id, with their attributes and
text, and the values a form would send as it stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def get(self, name: str) -> str | None:
        return self.attributes.get(name)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, Element] = {}
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        element_id = element.get("id")
        if element_id:
            assert element_id not in self.by_id, f"two elements with id {element_id!r}"
            self.by_id[element_id] = element
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text_parts.append(data)


class Page:
    def __init__(self, html: str) -> None:
        self.html = html
        reader = _Reader()
        reader.feed(html)
        reader.close()
        self._by_id = reader.by_id
        self._elements = reader.elements

    def __contains__(self, element_id: str) -> bool:
        return element_id in self._by_id

    def ids_with_prefix(self, prefix: str) -> set[str]:
        """The ids that start with `prefix`, without it (`key-row-` gives the listed key ids)."""
        return {i.removeprefix(prefix) for i in self._by_id if i.startswith(prefix)}

    def element(self, element_id: str) -> Element:
        assert element_id in self._by_id, f"no element with id {element_id!r}"
        return self._by_id[element_id]

    def text(self, element_id: str) -> str:
        return " ".join(self.element(element_id).text.split())

    def value(self, element_id: str) -> str:
        """What an input, textarea or select with this id holds."""
        element = self.element(element_id)
        if element.tag == "textarea":
            return element.text
        if element.tag == "select":
            return self._selected(element)
        return element.get("value") or ""

    def checked(self, name: str) -> list[str]:
        """The values of the ticked checkboxes named `name`."""
        return [
            e.get("value") or ""
            for e in self._elements
            if e.tag == "input" and e.get("name") == name and "checked" in e.attributes
        ]

    def form_values(self, form_id: str) -> list[tuple[str, str]]:
        """The fields a browser would send for the form with this id, as it stands."""
        html = self.html
        start = html.index(f'id="{form_id}"')
        start = html.rindex("<form", 0, start)
        end = html.index("</form>", start)
        inner = Page(html[start:end])
        fields: list[tuple[str, str]] = []
        for element in inner._elements:
            name = element.get("name")
            if not name or element.tag not in ("input", "select", "textarea"):
                continue
            kind = element.get("type") or "text"
            if kind in ("submit", "button"):
                continue
            if kind == "checkbox":
                if "checked" in element.attributes:
                    fields.append((name, element.get("value") or "on"))
            elif element.tag == "textarea":
                fields.append((name, element.text))
            elif element.tag == "select":
                fields.append((name, inner._selected(element)))
            else:
                fields.append((name, element.get("value") or ""))
        return fields

    def _selected(self, select: Element) -> str:
        options = self._options_of(select)
        chosen = [o for o in options if "selected" in o.attributes] or options[:1]
        return chosen[0].get("value") or "" if chosen else ""

    def _options_of(self, select: Element) -> list[Element]:
        index = self._elements.index(select)
        options = []
        for element in self._elements[index + 1 :]:
            if element.tag in ("select", "input", "textarea", "button"):
                break
            if element.tag == "option":
                options.append(element)
        return options
