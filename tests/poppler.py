"""Debian's poppler-utils for reading back the PDFs the tests make: their text (`pdftotext`),
their pages as pictures (`pdftoppm`) and their images (`pdfimages`). A missing tool fails the
test with how to install it; `make test` installs them first (`make poppler`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = ("pdftotext", "pdftoppm", "pdfimages", "pdfinfo")


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is missing: `make poppler` installs Debian's poppler-utils "
            "(`make test` does it first)",
            pytrace=False,
        )
    return found


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
    return done.stdout


def pdf_text(pdf: Path, page: int | None = None) -> str:
    """The text in reading layout; of one page (from 1) when `page` is given."""
    pages = () if page is None else ("-f", str(page), "-l", str(page))
    return _run(tool("pdftotext"), "-layout", *pages, str(pdf), "-")


def page_count(pdf: Path) -> int:
    info = _run(tool("pdfinfo"), str(pdf))
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])


def raster_images(pdf: Path) -> list[str]:
    """The rows of `pdfimages -list` after its header: one per raster image in the file."""
    return _run(tool("pdfimages"), "-list", str(pdf)).splitlines()[2:]


def page_pictures(pdf: Path, into: Path, *, prefix: str, dpi: int = 80) -> list[Path]:
    """Every page as a PNG in `into`: `<prefix>-1.png`, `<prefix>-2.png`..."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob(f"{prefix}-*.png"):
        old.unlink()
    _run(tool("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(into / prefix))
    return sorted(into.glob(f"{prefix}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
