"""The console's chart SVG made printable: the light theme's colours written into the drawing.

The console colours its charts through `charts.css` (classes and CSS variables) and
`currentColor`; a PDF library reads neither. `printable_svg` applies the light theme's rules of
charts.css to the elements themselves, drops what only a screen uses (hover titles, the
crosshair, the markers hidden on dense charts) and keeps the text a PDF's built-in fonts can
write (`svg_text`).
"""

from __future__ import annotations

from typing import Final
from xml.etree import ElementTree

from admin_ui.chart_parts import SVG_NAMESPACE

LIGHT: Final = {
    "text-2": "#3d4550",
    "muted": "#646e7b",
    "border-strong": "#cdd2d8",
    "accent": "#4f46e5",
    "surface": "#ffffff",
}
"""The light theme's colours that charts.css uses (console.css `:root`)."""

CLASS_STYLES: Final[tuple[tuple[frozenset[str], dict[str, str]], ...]] = (
    (frozenset({"chart-tick-label"}), {"fill": LIGHT["muted"]}),
    (frozenset({"chart-legend-value"}), {"fill": LIGHT["muted"], "fill-opacity": "1"}),
    (frozenset({"chart-bar-value"}), {"fill": LIGHT["muted"]}),
    (frozenset({"chart-grid"}), {"stroke": LIGHT["border-strong"], "stroke-opacity": "0.7"}),
    (frozenset({"chart-grid", "chart-zero"}), {"stroke": LIGHT["muted"], "stroke-opacity": "0.8"}),
    (frozenset({"chart-empty"}), {"fill": LIGHT["muted"], "font-size": "12"}),
    (frozenset({"chart-bar-label"}), {"fill": LIGHT["text-2"]}),
    (frozenset({"chart-bar-accent"}), {"fill": LIGHT["accent"]}),
    (frozenset({"chart-point"}), {"stroke": LIGHT["surface"], "stroke-width": "1"}),
)
"""charts.css's light-theme rules, as (classes an element has, attributes it takes); later
entries win, as the more specific selectors do in the sheet."""

FONT_FAMILY: Final = "Helvetica"
PDF_ENCODING: Final = "windows-1252"
"""What the PDF's built-in fonts write: Western European text, dashes, ellipsis, middle dot."""
PDF_REPLACEMENTS: Final = {"\u2212": "-", "\u2009": " ", "\u202f": " ", "\u2011": "-"}

_SVG = f"{{{SVG_NAMESPACE}}}"
ElementTree.register_namespace("", SVG_NAMESPACE)


SVG_REPLACEMENTS: Final = {"\u2014": "-", "\u2013": "-", "\u2026": "...", "\u2019": "'"}
"""fpdf2 measures a drawing's text by Latin-1 alone: the dashes and ellipsis of Windows-1252
are written as their ASCII kin there."""


def svg_text(text: str) -> str:
    """`text` for a chart's text: `pdf_text`, then within Latin-1."""
    text = pdf_text(text)
    for character, replacement in SVG_REPLACEMENTS.items():
        text = text.replace(character, replacement)
    return text.encode("latin-1", errors="replace").decode("latin-1")


def pdf_text(text: str) -> str:
    """`text` in the characters the built-in fonts have: the true minus becomes a hyphen-minus,
    thin spaces spaces, and anything else outside Windows-1252 a question mark."""
    for character, replacement in PDF_REPLACEMENTS.items():
        text = text.replace(character, replacement)
    return text.encode(PDF_ENCODING, errors="replace").decode(PDF_ENCODING)


def _classes(element: ElementTree.Element) -> frozenset[str]:
    return frozenset(element.get("class", "").split())


def _hidden(element: ElementTree.Element, parent_classes: frozenset[str]) -> bool:
    classes = _classes(element)
    if element.tag == f"{_SVG}title" or "chart-crosshair" in classes:
        return True
    dense = "chart-points-dense" in parent_classes
    return dense and "chart-point" in classes and "chart-point-alone" not in classes


def _drop_hidden(element: ElementTree.Element) -> None:
    """Remove hidden children, keeping the text that followed them (a bar's label follows its
    hover title inside the same `<text>`)."""
    classes = _classes(element)
    for child in list(element):
        if _hidden(child, classes):
            if child.tail:
                element.text = (element.text or "") + child.tail
            element.remove(child)
        else:
            _drop_hidden(child)


def _style(element: ElementTree.Element, colour: str) -> None:
    classes = _classes(element)
    for needed, attributes in CLASS_STYLES:
        if needed <= classes:
            element.attrib.update(attributes)
    for name in ("fill", "stroke"):
        if element.get(name) == "currentColor":
            element.set(name, colour)
    if element.text:
        element.text = svg_text(element.text)
    if element.tail:
        element.tail = svg_text(element.tail)
    for child in element:
        _style(child, colour)


def printable_svg(markup: str) -> str:
    """A chart drawn by admin_ui/chart_*.py with its light-theme colours resolved."""
    root = ElementTree.fromstring(markup)
    _drop_hidden(root)
    root.set("font-family", FONT_FAMILY)
    for name in ("tabindex", "role", "aria-label"):
        root.attrib.pop(name, None)
    _style(root, LIGHT["text-2"])
    return ElementTree.tostring(root, encoding="unicode")
