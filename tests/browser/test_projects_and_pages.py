"""Issue 2 in a real browser: sign in, create a project from an upload, watch it split, proofread
a page beside its scan, and meet a save conflict without losing what was typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import corpus

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SPLIT_TIMEOUT_MS = 60_000


def test_create_project_split_proofread_and_conflict(ui, editors):
    """An editor creates a project through the form, proofreads page 2 beside its scan, and a
    second editor saving an older version of the page sees a conflict with both texts."""
    first, second = editors
    page = ui.new_page()

    page.goto("/proofing/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill(first)
    page.get_by_label("Password").fill(editors[first])
    ui.shot(page, "01-login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    ui.shot(page, "02-project-list")

    page.get_by_role("link", name="New project", exact=True).click()
    page.get_by_label("Title").fill("Multipage sampler")
    page.get_by_label("Slug").fill("browser-multipage")
    page.get_by_label("OCR language").fill("eng")
    page.get_by_label("Run OCR on every page").uncheck()  # OCR from upload: its own test
    page.get_by_label("Scanned book").set_input_files(corpus("multipage.pdf"))
    ui.shot(page, "03-create-form")
    page.get_by_role("button", name="Create project").click()

    # The split of six pages takes a second or two: the page shows its progress, polls, and
    # reloads itself into the list of pages when the split ends.
    expect(page).to_have_url(re.compile(r"/proofing/browser-multipage/$"))
    split = page.locator("#split")
    expect(split).to_contain_text("of 6 pages ready")
    ui.shot(page, "04-project-splitting")
    expect(split).to_have_count(0, timeout=SPLIT_TIMEOUT_MS)
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text("Page 1")
    ui.shot(page, "05-project-ready")

    page.get_by_role("link", name="Page 2", exact=True).click()
    scan = page.get_by_role("img", name="Scan of page 2")
    expect(scan).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=scan.element_handle())
    box = page.get_by_role("textbox", name="Page text")
    expect(box).to_be_visible()
    # Side by side: the text box starts to the right of the scan, at about the same height.
    scan_box, text_box = scan.bounding_box(), box.bounding_box()
    assert text_box["x"] >= scan_box["x"] + scan_box["width"] - 1, (scan_box, text_box)
    assert abs(text_box["y"] - scan_box["y"]) < 100, (scan_box, text_box)

    typed = "Chapter two\nधर्मक्षेत्रे कुरुक्षेत्रे — proofread by hand"
    box.fill(typed)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Page 2 saved")
    ui.shot(page, "06-page-editor")
    page.reload()
    expect(page.get_by_role("textbox", name="Page text")).to_have_value(typed)
    expect(page.locator(".crumbs .badge")).to_have_text("edited")

    # The conflict: the other editor opens the same version, the first saves again, then
    # the other saves on top of the version it opened.
    other = ui.new_page()
    ui.sign_in(other, second)
    other.goto("/proofing/browser-multipage/2/")
    expect(other.get_by_role("textbox", name="Page text")).to_have_value(typed)

    theirs = typed + "\nA line added by the first editor."
    page.get_by_role("textbox", name="Page text").fill(theirs)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Page 2 saved")

    mine = typed + "\nA different line from the second editor."
    other.get_by_role("textbox", name="Page text").fill(mine)
    ui.expected_statuses.add(409)
    other.get_by_role("button", name="Save", exact=True).click()
    conflict = other.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("saved this page while you were editing")
    expect(conflict).to_contain_text(first)
    expect(conflict.locator(".theirs")).to_have_text(theirs)
    expect(other.get_by_role("textbox", name="Page text")).to_have_value(mine)
    ui.shot(other, "07-conflict")

    # Saving again after reading their text is accepted: the form now names the new version.
    other.get_by_role("button", name="Save", exact=True).click()
    expect(other.get_by_role("status")).to_contain_text("Page 2 saved")
    expect(other.get_by_role("textbox", name="Page text")).to_have_value(mine)
