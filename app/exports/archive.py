"""The ZIP formats' layout: one file per page, named by the project and the page number."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from app.exports import ExportMeta, ExportPart


def write_zip(parts: Sequence[ExportPart], meta: ExportMeta, out: Path, extension: str) -> None:
    """`slug/slug-0001.<extension>`, ... : the numbers padded to one width so that names sort
    in page order."""
    width = max(4, len(str(max((part.number for part in parts), default=0))))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in parts:
            archive.write(part.path, f"{meta.slug}/{meta.slug}-{part.number:0{width}d}.{extension}")
