"""Proofreading in a real browser: the project page's status bar and filter on a 500-page
book, a page's history, a revision's word diff (Devanagari) and restoring it, and search and
replace with its preview, in the request and as a background job."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Page, PageStatus, User
from app.services import replace
from app.services.accounts import bot_user
from app.services.pages import save_page_text
from tests.support import add_ready_project

pytestmark = pytest.mark.browser

LEVELS = [
    PageStatus.PROOFREAD_TWICE,
    PageStatus.PROOFREAD_ONCE,
    PageStatus.PROOFREAD_ONCE,
    PageStatus.NEEDS_WORK,
    PageStatus.NEEDS_WORK,
    PageStatus.NOT_RELEVANT,
]


@pytest.fixture(scope="module")
def big_book(stack):
    """A 500-page book at every level, with Devanagari text."""
    with stack.app.app_context():
        project = add_ready_project("browser-500", 500, language="san")
        for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
            page.text = f"पृष्ठ {page.number}: धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः"
            page.status = LEVELS[page.number % len(LEVELS)] if page.number < 400 else "needs-work"
            page.version = 1
        db.session.commit()
        db.session.remove()
    return "browser-500"


def test_the_project_page_shows_the_status_bar_and_filters(ui, editors, big_book):
    page = ui.new_page()
    ui.sign_in(page, next(iter(editors)))
    page.goto(f"/proofing/{big_book}/")
    bar = page.locator(".levels")
    expect(bar).to_be_visible()
    segments = bar.locator("a.level")
    expect(segments).to_have_count(4)
    widths = [box["width"] for box in (s.bounding_box() for s in segments.all())]
    assert abs(sum(widths) - bar.bounding_box()["width"]) < 2  # the parts fill the bar
    expect(page.locator('[data-count="proofread-twice"]')).to_have_text("66")
    expect(page.locator("#page-list tbody tr")).to_have_count(100)
    expect(page.get_by_text("Pages 1–100 of 500")).to_be_visible()
    ui.shot(page, "history-01-project-500-pages")

    page.locator("#status-filter").select_option("proofread-twice")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=proofread-twice"))
    rows = page.locator("#page-list tbody tr")
    expect(rows).to_have_count(66)
    expect(rows.first.locator(".level-badge")).to_have_text("Proofread twice")
    ui.shot(page, "history-02-filtered-proofread-twice")

    page.get_by_role("link", name="Next page that needs work").click()
    expect(page).to_have_url(re.compile(rf"/proofing/{big_book}/3/$"))


@pytest.fixture
def page_with_history(stack):
    """Page 1 of a small Devanagari book: OCR's text, then two corrections."""
    with stack.app.app_context():
        project = add_ready_project(f"history-{uuid.uuid4().hex[:10]}", 2, language="san")
        slug = project.slug
        page = db.session.scalar(select(Page).filter_by(project_id=project.id, number=1))
        bot = bot_user()
        db.session.commit()
        person = db.session.scalar(select(User).filter_by(username="browser-edna"))
        assert save_page_text(page, bot, "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सव", 0, "OCR").saved
        assert save_page_text(page, person, "धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः", 1, "visarga").saved
        assert save_page_text(page, person, "धर्मक्षेत्रे समवेता युयुत्सवः", 2, "cut").saved
        db.session.remove()
    return slug


def test_history_then_a_revisions_diff_then_restore(ui, editors, page_with_history):
    slug = page_with_history
    page = ui.new_page()
    ui.sign_in(page, "browser-ravi")
    page.goto(f"/proofing/{slug}/1/history")
    rows = page.locator("#revisions tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("cut")
    expect(rows.nth(2)).to_contain_text("OCR bot")
    ui.shot(page, "history-03-history")

    rows.nth(1).get_by_role("link", name="#2").click()
    diff = page.locator("#diff")
    expect(diff.locator("del")).to_have_text("युयुत्सव")
    expect(diff.locator("ins")).to_have_text("युयुत्सवः")
    ui.shot(page, "history-04-revision-diff")

    page.get_by_role("button", name="Restore this version").click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/1/history$"))
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Restored revision 2")
    expect(rows.nth(0)).to_contain_text("browser-ravi")
    ui.shot(page, "history-05-restored")
    newest = rows.nth(0).get_by_role("link").first
    newest.click()
    expect(page.locator("#diff ins")).to_have_text(re.compile(r"^\s*कुरुक्षेत्रे\s*$"))
    expect(page.get_by_text("This is the page's text now.")).to_be_visible()


def test_search_then_replace_with_a_preview(ui, editors, page_with_history):
    slug = page_with_history
    page = ui.new_page()
    ui.sign_in(page, "browser-edna")
    page.goto(f"/proofing/{slug}/search")
    page.locator("#q").fill("समवेता")
    page.get_by_role("button", name="Search").click()
    hit = page.locator("ol.hits > li")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("समवेता")
    ui.shot(page, "history-06-search")

    page.locator("#find").fill("समवेता")
    page.locator("#replace-with").fill("समवेताः")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-summary")).to_contain_text("1 match on 1 page")
    expect(page.locator("#preview del")).to_have_text("समवेता")
    expect(page.locator("#preview ins")).to_have_text("समवेताः")
    ui.shot(page, "history-07-replace-preview")
    page.locator("#apply").click()
    expect(page.locator("#applied")).to_contain_text("1 page changed")
    ui.shot(page, "history-08-replaced")


def test_a_replace_over_many_pages_runs_as_a_job_with_progress(ui, editors, stack):
    with stack.app.app_context():
        project = add_ready_project(f"replace-ui-{id(object())}", replace.SYNC_LIMIT + 15)
        slug = project.slug
        for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
            page.text = f"Page {page.number} of the olde booke"
        db.session.commit()
        db.session.remove()
    page = ui.new_page()
    ui.sign_in(page, "browser-edna")
    page.goto(f"/proofing/{slug}/search")
    page.locator("#find").fill("olde booke")
    page.locator("#replace-with").fill("old book")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-summary")).to_contain_text("runs in the background")
    page.locator("#apply").click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/replace/progress$"))
    if page.locator("#progress-live").count():  # caught while it runs (it takes seconds)
        ui.shot(page, "history-09-replace-job-running")
    # Live while it runs, then the page reloads itself into the summary.
    expect(page.locator("#summary")).to_contain_text("35 of 35 pages changed", timeout=90_000)
    ui.shot(page, "history-10-replace-job-done")
