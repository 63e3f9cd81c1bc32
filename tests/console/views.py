"""How the browser tests look at a page: at a wide and a phone width, in the light and dark
themes, and with the keyboard alone."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
MAX_TABS = 60


def look_at_phone_width(page: Page) -> None:
    """At phone width the page scrolls only downwards (wide tables scroll inside their box), and
    the navigation strip shows the current page."""
    wide = page.viewport_size or WIDE
    page.set_viewport_size(PHONE)
    try:
        overflow = page.evaluate(
            """() => {
                const width = window.innerWidth;
                const clipped = (element) => {
                    for (let up = element.parentElement; up; up = up.parentElement) {
                        if (getComputedStyle(up).overflowX !== 'visible') return true;
                    }
                    return false;
                };
                // to say what sticks out: what no box that scrolls sideways holds, and what is
                // positioned out of one (an absolute element escapes a box that is not positioned)
                const outside = [...document.querySelectorAll('body *')].filter((element) => {
                    if (element.getBoundingClientRect().right <= width + 1) return false;
                    const position = getComputedStyle(element).position;
                    return !clipped(element) || ['absolute', 'fixed'].includes(position);
                });
                return {
                    scroll: document.documentElement.scrollWidth,
                    width,
                    outside: outside.slice(0, 5).map(
                        (element) => element.tagName.toLowerCase()
                            + (element.id ? '#' + element.id : '')
                            + (element.className ? '.' + String(element.className).split(' ').join('.') : '')
                    ),
                };
            }"""
        )
        assert overflow["scroll"] <= overflow["width"], overflow
        current = page.locator('nav.sidebar a[aria-current="page"]')
        if current.count():
            page.evaluate("window.scrollTo(0, 0)")  # the strip is at the top of the page
            expect(current).to_be_in_viewport(ratio=1)
    finally:
        page.set_viewport_size(wide)


def look_at(
    page: Page,
    docs_screenshot: Callable[..., Path],
    name: str,
    pictures: Iterable[str] = (),
) -> None:
    """Check the page at phone width, and take its pictures for docs/console.md, each named
    `console-<name>[-variant].png`: `light` and `dark` at the page's own (wide) width, whole;
    `phone` and `phone-dark` at 390 px, the first screen."""
    look_at_phone_width(page)
    wide = page.viewport_size or WIDE
    for variant in pictures:
        phone = variant.startswith("phone")
        page.emulate_media(color_scheme="dark" if variant.endswith("dark") else "light")
        if phone:
            page.set_viewport_size(PHONE)
        suffix = "" if variant == "light" else f"-{variant}"
        docs_screenshot(page, f"{name}{suffix}", full_page=not phone)
        page.set_viewport_size(wide)
    page.emulate_media(color_scheme="light")


def _focus_of(page: Page, selector: str) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        """(selector) => {
            const element = document.activeElement;
            const style = getComputedStyle(element);
            return {
                matches: element.matches(selector),
                name: element.tagName.toLowerCase() + (element.id ? '#' + element.id : ''),
                ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
                // a date input's own buttons are inside it: it has the focus within
                focusVisible: element.matches(':focus-visible, :focus-within'),
            };
        }""",
        selector,
    )
    return found


def keyboard_to(page: Page, selector: str) -> list[str]:
    """Press Tab until the element matching `selector` has the focus; every element passed on
    the way must show a focus ring. The names of the elements passed."""
    passed: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focus = _focus_of(page, selector)
        assert focus["focusVisible"] and focus["ring"], f"no visible focus on {focus['name']}"
        passed.append(focus["name"])
        if focus["matches"]:
            return passed
    raise AssertionError(f"{selector} not reached with Tab; passed {passed}")
