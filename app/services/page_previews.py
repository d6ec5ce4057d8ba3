"""The preview of a page scan the editor shows first: the full scan scaled to PREVIEW_WIDTH,
made once and kept beside the page images, so that opening a page never waits for a 3600 x 4800
PNG to be sent and decoded.

The editor's viewer (OpenSeadragon, app/static/js/editor.js) is given two levels of one image:
this preview, and the full scan for when a reader zooms past the preview's resolution
(docs/editor.md has the measurements that chose a preview over tiles). A preview is a grey or
colour JPEG: a 1-bit scan scaled down becomes grey (anti-aliased, easier to read than dropped
pixels) and JPEG keeps that small.

A preview is made again when its page image is newer (a page rendered again), and lives under
the project's folder, so deleting a project deletes its previews.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from PIL import Image

#: Pixels across: wider than a reading-size scan on a 1920-pixel screen beside the text, and
#: about a tenth of the full scan's pixels.
PREVIEW_WIDTH = 1600
#: JPEG quality: text edges stay clean at reading size.
PREVIEW_QUALITY = 82


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The preview's pixel size for a scan of `width` x `height` (never larger than it)."""
    if width <= PREVIEW_WIDTH:
        return width, height
    return PREVIEW_WIDTH, max(1, round(height * PREVIEW_WIDTH / width))


def preview_path(data_dir: Path, image_path: str) -> Path:
    """Where the preview of the page image at `image_path` (relative to DATA_DIR) is kept:
    projects/<slug>/previews/<stem>.jpg beside projects/<slug>/pages/."""
    image = Path(image_path)
    return data_dir / image.parent.parent / "previews" / f"{image.stem}.jpg"


def ensure_preview(data_dir: Path, image_path: str) -> Path:
    """The preview of a page image, made now if missing or older than the image.

    Written to a temporary file and renamed, so two requests at once never serve half a
    file. Raises FileNotFoundError if the page image is missing, OSError if unreadable.
    """
    source = data_dir / image_path
    target = preview_path(data_dir, image_path)
    source_mtime = source.stat().st_mtime
    with contextlib.suppress(FileNotFoundError):
        if target.stat().st_mtime >= source_mtime:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        mode = "L" if image.mode in ("1", "L", "LA") else "RGB"
        image.draft(mode, preview_size(*image.size))  # a JPEG scan decodes at a fraction
        picture = image.convert(mode)
        size = preview_size(*picture.size)
        if size != picture.size:
            picture = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    fd, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            picture.save(out, "JPEG", quality=PREVIEW_QUALITY, optimize=True)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target
