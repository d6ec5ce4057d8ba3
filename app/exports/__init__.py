"""The export formats: how a project's pages become a file.

Each format turns one page into a part (`render_part`, run by the page tasks of an export job,
on any worker) and the parts, in page order, into the file (`assemble`, run once at the end).
Parts are files on disk, so assembling a 500-page book never holds the book in memory.

The export job (app/services/exports/) and the CLI choose a format by its name in FORMATS;
nothing outside this package knows how a format is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class ExportError(Exception):
    """A page cannot be rendered in a format, and trying again will not help (its stored scan
    is missing or unreadable); the message says why, for the person who asked for the export."""


@dataclass(frozen=True)
class ExportPage:
    """What a format needs of one page: its latest text, and the OCR and scan behind it."""

    number: int
    text: str
    #: Word boxes of the last OCR, as stored on the page (app/text/alignment.py reads them).
    boxes: list | None
    status: str
    #: The stored scan, absolute; None when the page has no image.
    image_path: Path | None
    width: int
    height: int
    #: Resolution of the stored scan (None: unknown).
    dpi: float | None
    #: Tesseract-style language code(s) of the project, e.g. "san" or "eng+san".
    language: str


@dataclass(frozen=True)
class ExportMeta:
    """What a format needs of the project."""

    title: str
    slug: str
    source_filename: str
    languages: tuple[str, ...]
    exported_at: datetime


@dataclass(frozen=True)
class ExportPart:
    """One page's rendered part, on disk, as the page task wrote it."""

    number: int
    path: Path


class Format(Protocol):
    #: The name in URLs, the CLI and Export.format: "pdf", "txt", "txt-zip", "tei", ...
    name: str
    #: What the export page calls it.
    label: str
    #: The downloaded file's extension, without the dot.
    extension: str
    content_type: str

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        """One page's part of the file. Raises ExportError when the page cannot be rendered."""

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        """Write the file to `out` from the pages' parts, in page order."""


def _registry() -> dict[str, Format]:
    from app.exports import alto, hocr, pdf, tei, text

    formats: list[Format] = [
        *text.FORMATS,
        *tei.FORMATS,
        *hocr.FORMATS,
        *alto.FORMATS,
        *pdf.FORMATS,
    ]
    return {f.name: f for f in formats}


FORMATS: dict[str, Format] = _registry()
