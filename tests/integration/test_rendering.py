"""Rendering with the real pdftoppm (app/rendering.py), which takes the pages whose scans are
too large for PDFium. The rest of rendering needs nothing installed: tests/unit/test_rendering.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from app import rendering
from app.config import load_config
from app.rendering import RenderedPage, iter_pages
from tests.support import CORPUS

pytestmark = pytest.mark.integration

#: The documented defaults (docs/configuration.md); SECRET_KEY given so nothing is written.
DEFAULTS = load_config({"DATA_DIR": str(CORPUS), "SECRET_KEY": "unused"})
MAX_PIXELS = DEFAULTS["RENDER_MAX_PIXELS"]


def render_all(path: Path, out_dir: Path) -> list[RenderedPage]:
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"default_dpi": DEFAULTS["RENDER_DPI"], "max_pixels": MAX_PIXELS}
    return [page for _, page in iter_pages(path, out_dir, **options)]


def mean_difference(a: Path, b: Path) -> float:
    """Mean absolute difference of two grayscale images over the area they share."""
    with Image.open(a) as first, Image.open(b) as second:
        box = (0, 0, min(first.width, second.width), min(first.height, second.height))
        return ImageStat.Stat(ImageChops.difference(first.crop(box), second.crop(box))).mean[0]


def test_pdftoppm_renders_the_same_page_as_pdfium(tmp_path, monkeypatch):
    """With the limit at 0 every page goes to pdftoppm: the same DPI, the same size but for
    rounding (PDFium rounds a side up, pdftoppm to the nearest pixel) and nearly the same
    pixels as PDFium's rendering of linn.pdf: the two anti-alias edges differently, so text
    edges differ by a few levels (3.8 of 255 on average when measured; Tesseract then reads
    the page alike, with 3 of 4556 characters different)."""
    assert shutil.which("pdftoppm"), "pdftoppm is not installed (make test installs it)"
    (tmp_path / "pdfium").mkdir()
    (tmp_path / "pdftoppm").mkdir()
    # Rendered, not extracted: the comparison is of the two renderers.
    monkeypatch.setattr(rendering, "extract_single_scan", lambda *args, **kwargs: None)
    [by_pdfium] = render_all(CORPUS / "linn.pdf", tmp_path / "pdfium")
    monkeypatch.setattr(rendering, "PDFIUM_MAX_SCAN_BYTES", 0)
    calls = []
    real_run = rendering.subprocess.run
    monkeypatch.setattr(
        rendering.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or real_run(cmd, **kw)
    )
    [by_pdftoppm] = render_all(CORPUS / "linn.pdf", tmp_path / "pdftoppm")
    assert calls and calls[0][0] == "pdftoppm"
    assert by_pdftoppm.dpi == by_pdfium.dpi
    assert abs(by_pdftoppm.width - by_pdfium.width) <= 1
    assert abs(by_pdftoppm.height - by_pdfium.height) <= 1
    assert by_pdftoppm.width * by_pdftoppm.height <= MAX_PIXELS
    with Image.open(by_pdftoppm.path) as image:
        assert image.mode == "L"
    with Image.open(by_pdftoppm.path) as image:
        assert image.mode == "L"
    assert mean_difference(by_pdfium.path, by_pdftoppm.path) < 6.0
    assert not list((tmp_path / "pdftoppm").glob(".pdftoppm-*")), "temp directory left behind"
