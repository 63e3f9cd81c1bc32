"""One colour per series name (a model, a provider, a key...), the same on every page and in
every process, so `gpt-4o` is the same blue on the overview, the cost page and a saved dashboard.

The colour comes from a CRC-32 of the name, never from Python's `hash()` (salted per process).
The palette's twelve colours are far apart in hue and each keeps a contrast of at least 3:1
against both the light and the dark theme's surfaces, which is what a line or a bar needs to be
seen. "Other" buckets are grey, so the eye reads them as the rest.
"""

from __future__ import annotations

import zlib
from typing import Final

PALETTE: Final = (
    "#2f6fe4",  # blue
    "#ea6a0c",  # orange
    "#16a34a",  # green
    "#dc2626",  # red
    "#8b5cf6",  # violet
    "#0d9488",  # teal
    "#db2777",  # pink
    "#b8860b",  # gold
    "#0891b2",  # cyan
    "#65a30d",  # lime
    "#a0522d",  # brown
    "#c026d3",  # magenta
)
OTHER_COLOR: Final = "#8b949e"
OTHER_NAMES: Final = frozenset({"other", "(other)", "others", "(others)"})

SEED: Final = 229380
"""CRC-32's starting value, picked once so that the demo data's models and providers and the
model names most seen today land on different colours. Changing it recolours every chart."""


def is_other(name: str) -> bool:
    return name.strip().lower() in OTHER_NAMES


def palette_index(name: str) -> int:
    """The name's place in `PALETTE`: stable across processes, releases and machines."""
    return zlib.crc32(name.encode("utf-8"), SEED) % len(PALETTE)


def series_color(name: str) -> str:
    """The colour (`#rrggbb`) of the series called `name`; grey for an "other" bucket."""
    if is_other(name):
        return OTHER_COLOR
    return PALETTE[palette_index(name)]
