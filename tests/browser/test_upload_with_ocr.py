"""OCR straight from the upload, in a real browser: one form makes the project and its OCR
job, the progress page shows pages being prepared and then read, the user can leave and come
back, and the job is on the project's record when it ends."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Job, Page, Project
from tests.support import corpus

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: Six multipage.pdf pages are split and OCR'd in some 15 s; this bounds a slow shared machine.
JOB_TIMEOUT_MS = 150_000


def test_an_upload_with_ocr_goes_from_the_form_to_the_text(ui, editors, stack):
    slug = "browser-upload-ocr"
    page = ui.new_page()
    ui.sign_in(page, next(iter(editors)))
    page.goto("/proofing/create-project")
    page.get_by_label("Title").fill("Read on arrival")
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("OCR language").fill("eng")
    ocr = page.get_by_label("Run OCR on every page")
    expect(ocr).to_be_checked()
    expect(page.get_by_label("Tesseract (local)")).to_be_checked()
    page.get_by_label("Scanned book").set_input_files(corpus("multipage.pdf"))
    ui.shot(page, "upload-ocr-01-form")
    page.get_by_role("button", name="Create project").click()

    # Straight to the job's progress page: every page of the book is in the grid at once,
    # those not rendered yet shown as being prepared.
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/batch-ocr$"))
    progress = page.locator("#progress")
    expect(progress).to_be_visible()
    expect(progress.locator(".counts")).to_contain_text("of 6 pages finished")
    expect(page.locator("#grid li")).to_have_count(6)
    ui.shot(page, "upload-ocr-02-progress")

    # Leave for the project page and come back while it runs (or after it ended).
    page.goto(f"/proofing/{slug}/")
    page.goto(f"/proofing/{slug}/batch-ocr")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("6 of 6 pages done", timeout=JOB_TIMEOUT_MS)
    expect(summary).to_contain_text("succeeded")
    ui.shot(page, "upload-ocr-03-summary")

    # The job is on the project's record, started from the upload.
    history = page.locator("#history")
    expect(history).to_contain_text("succeeded")
    history.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/batch-ocr/jobs/[0-9a-f-]+$"))
    expect(page.locator("main")).to_contain_text("6 of 6 pages done")
    ui.shot(page, "upload-ocr-04-job-record")

    with stack.app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=slug))
        [job] = db.session.scalars(select(Job).filter_by(project_id=project.id)).all()
        assert job.selection == "upload"
        texts = db.session.scalars(select(Page.text).filter_by(project_id=project.id)).all()
    assert len(texts) == 6 and all(text.strip() for text in texts)
    assert not ui.errors, ui.errors
