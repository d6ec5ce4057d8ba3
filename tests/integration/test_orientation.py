"""Orientation detection with the real Tesseract (app/engines/tesseract.py `detect_rotation`,
used by the split through app/rendering.py): a page of the corpus scanned a quarter turn, a
half turn or three quarters off comes back upright, pixel for pixel; a blank page and a page
OSD cannot read stay as they are. What detection costs per page is reported (as the test's
`osd_seconds` property, and in the log), not asserted: it depends on the machine."""

from __future__ import annotations

import logging
import time

import pytest
from PIL import Image

from app.engines.tesseract import detect_rotation
from app.rendering import iter_pages
from tests.bench import books

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def upright(tmp_path_factory):
    """linn.pdf's page, 1-bit at 300 DPI, as the bilevel book has it."""
    [page] = books.bilevel_pages(1)
    return page


def timed_detector(seconds: list[float]):
    def detect(path):
        started = time.perf_counter()
        try:
            return detect_rotation(path)
        finally:
            seconds.append(time.perf_counter() - started)

    return detect


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_page_comes_back_upright(tmp_path, upright, degrees, record_property):
    scanned = upright.rotate(degrees, expand=True)  # counter-clockwise: the scan is off
    path = tmp_path / "scan.png"
    scanned.save(path, dpi=(300, 300))
    seconds: list[float] = []
    (tmp_path / "out").mkdir()
    [(_, page)] = list(
        iter_pages(
            path, tmp_path / "out", default_dpi=300, max_pixels=40_000_000,
            orient=timed_detector(seconds),
        )
    )  # fmt: skip
    record_property("osd_seconds", round(seconds[0], 2))
    log.warning("orientation detection of a 300 DPI letter page: %.2f s", seconds[0])
    assert page.rotation == degrees
    with Image.open(page.path) as image:
        assert (image.mode, image.size) == ("1", upright.size)
        assert image.tobytes() == upright.tobytes()


def test_an_upright_page_is_left_as_it_is(tmp_path, upright):
    path = tmp_path / "scan.png"
    upright.save(path, dpi=(300, 300))
    assert detect_rotation(path) == 0


def test_a_blank_page_and_a_page_osd_cannot_read_stay_as_they_are(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("1", (2550, 3300), 1).save(blank, dpi=(300, 300))
    assert detect_rotation(blank) == 0
    # Tesseract's OSD finds too few characters on a turned page of Sanskrit (measured).
    sanskrit, _ = books.devanagari_page()
    turned = tmp_path / "sanskrit.png"
    sanskrit.rotate(90, expand=True).save(turned, dpi=(300, 300))
    assert detect_rotation(turned) == 0
