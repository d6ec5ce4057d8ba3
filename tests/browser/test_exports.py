"""Exports in a real browser: start one from the project page, follow its progress, leave and
come back, see it finished and download the file; ask again and get the kept file."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from app.extensions import db
from app.models import Page
from tests.support import add_ready_project

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: Enough pages that the export is still running when the person leaves and comes back.
PAGES = 400
EXPORT_TIMEOUT_MS = 180_000


def expected_text(pages: int) -> str:
    return "".join(
        f"=== page {n} ===\nline one of page {n}\nline two\n\n" for n in range(1, pages + 1)
    )


@pytest.fixture
def export_book(stack):
    with stack.app.app_context():
        project = add_ready_project("browser-export", PAGES)
        project.title = "Book to export"
        for page in project.pages:
            db.session.execute(
                update(Page)
                .where(Page.id == page.id)
                .values(text=f"line one of page {page.number}\nline two", version=1)
            )
        db.session.commit()
        db.session.remove()
    return "browser-export"


def test_start_leave_come_back_and_download(ui, editors, export_book, tmp_path):
    slug = export_book
    page = ui.new_page()
    ui.sign_in(page, next(iter(editors)))

    page.goto(f"/proofing/{slug}/")
    page.get_by_role("link", name="Export", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/export$"))
    expect(page.get_by_label("Plain text (one file)")).to_be_checked()
    expect(page.get_by_label("Every page")).to_be_checked()
    ui.shot(page, "exports-01-form")
    page.get_by_role("button", name="Start export").click()

    expect(page.get_by_role("heading", name="Export in progress")).to_be_visible()
    expect(page.locator("#progress h2")).to_have_text("Plain text (one file) of every page")
    expect(page.locator("#bar")).to_be_visible()
    ui.shot(page, "exports-02-progress")

    # Leave for the project list, then come back: the export is shown, running or finished.
    page.goto("/proofing/")
    page.goto(f"/proofing/{slug}/export")
    download_link = page.locator("#download")
    expect(download_link).to_be_visible(timeout=EXPORT_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Last export: finished")).to_be_visible()
    expect(page.locator("#kept")).to_contain_text("up to date")
    ui.shot(page, "exports-03-finished")

    with page.expect_download() as info:
        download_link.click()
    download = info.value
    assert download.suggested_filename == f"{slug}.txt"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_text() == expected_text(PAGES)

    # Asking again for the same export serves the kept file at once.
    page.get_by_role("button", name="Start export").click()
    expect(page.locator(".flash-info")).to_contain_text("has not changed")
    expect(page.locator("#kept tr.highlight")).to_contain_text(f"{slug}.txt")
    ui.shot(page, "exports-04-kept")
