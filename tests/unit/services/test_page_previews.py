"""The scan previews the editor shows first (app/services/page_previews.py)."""

from __future__ import annotations

import pytest
from PIL import Image

from app.services import page_previews


@pytest.mark.parametrize(
    ("mode", "size", "preview_mode", "preview_size"),
    [
        ("1", (3600, 4800), "L", (1600, 2133)),  # 1-bit becomes grey, anti-aliased
        ("L", (2400, 3000), "L", (1600, 2000)),
        ("RGB", (4000, 3000), "RGB", (1600, 1200)),
        ("L", (800, 1000), "L", (800, 1000)),  # never enlarged
    ],
)
def test_a_preview_is_a_jpeg_at_most_preview_width_wide(
    tmp_path, mode, size, preview_mode, preview_size
):
    image_path = "projects/book/pages/00001.png"
    source = tmp_path / image_path
    source.parent.mkdir(parents=True)
    Image.new(mode, size, "white" if mode == "RGB" else 1 if mode == "1" else 255).save(source)
    preview = page_previews.ensure_preview(tmp_path, image_path)
    assert preview == tmp_path / "projects/book/previews/00001.jpg"
    with Image.open(preview) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", preview_mode, preview_size)
    assert not list(preview.parent.glob("*.part"))


def test_a_missing_scan_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        page_previews.ensure_preview(tmp_path, "projects/book/pages/00009.png")
    assert not (tmp_path / "projects/book/previews").exists()
