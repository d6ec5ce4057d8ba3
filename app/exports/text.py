"""Plain text: one UTF-8 file with a marker before each page, or a ZIP of one file per page."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.exports import ExportMeta, ExportPage, ExportPart
from app.exports.archive import write_zip


def page_marker(number: int) -> str:
    return f"=== page {number} ==="


def _page_text(page: ExportPage) -> str:
    text = page.text.replace("\r\n", "\n").rstrip("\n")
    return text + "\n" if text else ""


@dataclass(frozen=True)
class PlainText:
    name: str = "txt"
    label: str = "Plain text (one file)"
    extension: str = "txt"
    content_type: str = "text/plain; charset=utf-8"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        return f"{page_marker(page.number)}\n{_page_text(page)}\n".encode()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        with out.open("wb") as dest:
            for part in parts:
                with part.path.open("rb") as src:
                    shutil.copyfileobj(src, dest)


@dataclass(frozen=True)
class PlainTextZip:
    name: str = "txt-zip"
    label: str = "Plain text (ZIP, a file per page)"
    extension: str = "zip"
    content_type: str = "application/zip"

    def render_part(self, page: ExportPage, meta: ExportMeta) -> bytes:
        return _page_text(page).encode()

    def assemble(self, parts: Sequence[ExportPart], meta: ExportMeta, out: Path) -> None:
        write_zip(parts, meta, out, "txt")


FORMATS = (PlainText(), PlainTextZip())
