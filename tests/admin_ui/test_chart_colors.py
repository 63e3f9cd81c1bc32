"""Series colours: one per name, the same in every process, distinct for common names, legible
on both themes, grey for the rest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from admin_ui.chart_colors import OTHER_COLOR, PALETTE, palette_index, series_color

REPO = Path(__file__).resolve().parents[2]
COMMON_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3",
    "o4-mini",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "text-embedding-3-small",
]
MORE_MODELS = [
    "gpt-5",
    "gpt-5-mini",
    "gpt-3.5-turbo",
    "llama-3.1-70b-instruct",
    "mistral-large-latest",
    "deepseek-chat",
    "qwen2.5-7b-instruct",
    "text-embedding-3-large",
]
DEMO_MODELS = [  # gateway/demo/cast.py
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-5-mini",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
]
DEMO_PROVIDERS = ["openai", "azure-eu", "anthropic", "gemini"]


def relative_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_a_name_keeps_its_colour_and_common_names_mostly_differ() -> None:
    # Pinned: a model keeps the colour users learned for it from one release to the next.
    assert [series_color(name) for name in ("gpt-4o", "claude-sonnet-4-5", "openai")] == [
        "#16a34a",
        "#c026d3",
        "#8b5cf6",
    ]
    assert series_color("gpt-4o") == PALETTE[palette_index("gpt-4o")]
    assert len({series_color(name) for name in COMMON_MODELS}) >= 10
    assert len({series_color(name) for name in COMMON_MODELS + MORE_MODELS}) >= 11
    # what the demo data shows side by side never shares a colour
    assert len({series_color(name) for name in DEMO_MODELS}) == len(DEMO_MODELS)
    assert len({series_color(name) for name in DEMO_PROVIDERS}) == len(DEMO_PROVIDERS)


def test_colours_are_the_same_in_another_process_whatever_its_hash_seed() -> None:
    names = COMMON_MODELS + MORE_MODELS + ["", "é-model", "<script>"]
    script = (
        "import json, sys\n"
        "from admin_ui.chart_colors import series_color\n"
        "print(json.dumps([series_color(n) for n in json.loads(sys.argv[1])]))\n"
    )
    here = [series_color(name) for name in names]
    for seed in ("1", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(names)],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(done.stdout) == here


@pytest.mark.parametrize("name", ["other", "(other)", "Other", " (Other) ", "others"])
def test_the_rest_is_grey(name: str) -> None:
    assert series_color(name) == OTHER_COLOR
    assert OTHER_COLOR not in PALETTE


def test_every_colour_reads_on_both_themes() -> None:
    css = (REPO / "admin_ui" / "static" / "console.css").read_text()
    surfaces = re.findall(r"--surface:\s*(#[0-9a-fA-F]{6});", css)
    assert len(surfaces) == 2, "a light and a dark surface"
    assert len(set(PALETTE)) == len(PALETTE) == 12
    for colour in (*PALETTE, OTHER_COLOR):
        assert re.fullmatch(r"#[0-9a-f]{6}", colour)
        for surface in surfaces:
            assert contrast(colour, surface) >= 3.0, (colour, surface)
