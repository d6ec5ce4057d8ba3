"""The new-project form in a real browser with a book of page images: several files chosen at
once in its file input, put in natural file-name order, and a bilevel page shown in the page
editor as the 1-bit scan it is."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.bench import books

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SPLIT_TIMEOUT_MS = 60_000


def test_several_page_images_make_a_book_in_natural_order(ui, editors, tmp_path):
    editor = next(iter(editors))
    [bilevel] = books.bilevel_pages(1)
    files = []
    # Chosen in the order a file dialog may give them: page10 before page2 before page1.
    for name, width in (("page10.png", 900), ("page2.png", 600), ("page1.png", None)):
        path = tmp_path / name
        if width is None:
            bilevel.save(path, dpi=(300, 300))
        else:
            Image.new("L", (width, 800), 255).save(path, dpi=(200, 200))
        files.append(path)

    page = ui.new_page()
    ui.sign_in(page, editor)
    page.goto("/proofing/create-project")
    page.get_by_label("Title").fill("Loose pages")
    page.get_by_label("Slug").fill("browser-loose-pages")
    page.get_by_label("Detect page orientation").check()
    page.get_by_label("Run OCR on every page").uncheck()  # OCR from upload: its own test
    page.get_by_label("Scanned book").set_input_files(files)
    ui.shot(page, "page-images-01-create-form")
    page.get_by_role("button", name="Create project").click()

    expect(page).to_have_url(re.compile(r"/proofing/browser-loose-pages/$"))
    expect(page.locator("#split")).to_have_count(0, timeout=SPLIT_TIMEOUT_MS)
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(3)
    ui.shot(page, "page-images-02-project-ready")

    page.get_by_role("link", name="Page 1", exact=True).click()
    scan = page.get_by_role("img", name="Scan of page 1")
    # The viewer (OpenSeadragon) says when the scan is drawn at the size it shows.
    expect(scan).to_have_attribute("data-state", "ready")
    ui.shot(page, "page-images-03-bilevel-page")
    image = page.request.get("/proofing/browser-loose-pages/1/image")
    assert image.headers["content-type"] == "image/png"
    # page1.png, the bilevel page, comes first although it was chosen last; it is served as
    # the 1-bit scan it is. PNG's IHDR: width at bytes 16-20, then height, bit depth, colour.
    assert int.from_bytes(image.body()[16:20], "big") == bilevel.width
    assert image.body()[24:26] == b"\x01\x00", "bit depth 1, greyscale: not a 1-bit PNG"
    assert not ui.errors, ui.errors
