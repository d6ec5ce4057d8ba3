"""Issue 3 in a real browser: start batch OCR, follow its progress (with and without
JavaScript, across navigation and a new sign-in), read the summary and a failed page's reason,
and start one job however eagerly the button is clicked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Job, JobState, Page, Project
from tests.support import make_ready_project, multipage_pdf, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: A job of a few multipage.pdf pages ends in seconds; this bounds a slow, shared machine.
JOB_TIMEOUT_S = 120
JOB_TIMEOUT_MS = JOB_TIMEOUT_S * 1000


@pytest.fixture
def ready_project(stack, tmp_path):
    """Make a project of some multipage.pdf pages (0-based: pages 2 and 3 OCR in about a
    second, 4 and 5 in four to five seconds each) and wait for its split; returns its slug."""

    def make(slug: str, indices: list[int]) -> str:
        with stack.app.app_context():
            source = multipage_pdf(tmp_path / f"{slug}.pdf", indices)
            make_ready_project(slug, source, title=f"Book {slug}")
        return slug

    return make


def job_states(stack, slug: str) -> list[str]:
    """The state of every OCR job of the project, oldest first."""
    with stack.app.app_context():
        return list(
            db.session.scalars(
                select(Job.state)
                .join(Project, Job.project_id == Project.id)
                .filter(Project.slug == slug)
                .order_by(Job.started_at)
            )
        )


def wait_for_jobs_to_end(stack, slug: str) -> list[str]:
    def ended():
        states = job_states(stack, slug)
        return states if states and all(JobState(s).is_terminal for s in states) else None

    return wait_for(ended, JOB_TIMEOUT_S, f"the OCR job of {slug} to end", interval=0.3)


def percent_on(page) -> int:
    return int(page.locator("#percent").inner_text().rstrip("%"))


def test_progress_survives_leaving_and_signing_in_again(ui, editors, ready_project):
    """A running job's progress page comes back after visiting the project list and after
    signing out and in again, advances by itself, and turns into the summary at the end."""
    # Six pages whose OCR takes some ten seconds on two worker processes: long enough to leave,
    # sign out and come back (about three seconds) while the job runs.
    slug = ready_project("browser-batch-six", indices=[4, 5, 4, 5, 2, 3])
    user = next(iter(editors))
    page = ui.new_page()
    ui.sign_in(page, user)

    page.goto(f"/proofing/{slug}/")
    page.get_by_role("link", name="Batch OCR").click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/batch-ocr$"))
    expect(page.get_by_label("Tesseract (local)")).to_be_checked()
    expect(page.get_by_label("Pages never edited by a person")).to_be_checked()
    ui.shot(page, "08-batch-ocr-form")
    page.get_by_role("button", name="Start batch OCR").click()

    progress = page.locator("#progress")
    expect(progress).to_be_visible()
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(progress.locator(".counts")).to_contain_text("of 6 pages finished")
    expect(page.locator("#grid li")).to_have_count(6)

    # Leave for the project list and come back: the job is still shown.
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_role("link", name=f"Book {slug}")).to_be_visible()
    page.goto(f"/proofing/{slug}/batch-ocr")
    expect(progress).to_be_visible()

    # Sign out and in again while the job runs: the progress page is still what is shown.
    ui.sign_out(page)
    ui.sign_in(page, user)
    page.goto(f"/proofing/{slug}/batch-ocr")
    expect(progress).to_be_visible()
    expect(page.locator("#grid li")).to_have_count(6)
    before = percent_on(page)

    # The page polls: the percentage grows, or the job ends and the page turns into the summary.
    page.wait_for_function(
        """before => {
            const shown = document.getElementById('percent');
            return !shown || parseInt(shown.textContent, 10) > before;
        }""",
        arg=before,
        timeout=JOB_TIMEOUT_MS,
    )
    if progress.count():
        ui.shot(page, "09-progress-mid-run")

    summary = page.locator("#summary")
    expect(summary).to_contain_text("6 of 6 pages done", timeout=JOB_TIMEOUT_MS)
    expect(summary).to_contain_text("succeeded")
    expect(summary.locator(".grid .cell.done")).to_have_count(6)
    start_form = page.locator("#start-form")
    expect(start_form).to_be_visible()
    assert start_form.bounding_box()["y"] > summary.bounding_box()["y"]
    ui.shot(page, "10-summary")


def test_progress_page_without_javascript(ui, editors, ready_project, stack):
    """Without JavaScript the progress page refreshes itself through a meta refresh, shows the
    counts, and shows the summary once the job has ended."""
    slug = ready_project("browser-no-js", indices=[4, 3])
    page = ui.new_page(javascript=False)
    ui.sign_in(page, next(iter(editors)))

    page.goto(f"/proofing/{slug}/batch-ocr")
    page.get_by_role("button", name="Start batch OCR").click()
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_attribute("content", "3")
    expect(page.locator(".counts")).to_contain_text(re.compile(r"^\d+% · \d of 2 pages finished"))
    expect(page.locator(".tally")).to_contain_text(re.compile(r"\d done · \d failed · \d skipped"))
    ui.shot(page, "11-progress-without-javascript")

    assert wait_for_jobs_to_end(stack, slug) == ["succeeded"]
    expect(page.locator("#summary")).to_contain_text("2 of 2 pages done")


def test_unreadable_page_is_shown_failed_with_its_reason(ui, editors, ready_project, stack):
    """A page whose image cannot be read fails alone: the summary lists it by number with the
    engine's reason and shows its cell as failed, the other pages are done, and "Retry" runs
    that page only."""
    slug = ready_project("browser-broken-page", indices=[2, 3, 2])
    with stack.app.app_context():
        image_path = db.session.scalar(
            select(Page.image_path)
            .join(Project, Page.project_id == Project.id)
            .filter(Project.slug == slug, Page.number == 2)
        )
    # A PNG cut short, as a disk that filled up mid-write leaves it: the header is right, the
    # image data is not there.
    image = Path(stack.app.config["DATA_DIR"]) / image_path
    image.write_bytes(image.read_bytes()[:2048])

    page = ui.new_page()
    ui.sign_in(page, next(iter(editors)))
    page.goto(f"/proofing/{slug}/batch-ocr")
    page.get_by_role("button", name="Start batch OCR").click()

    summary = page.locator("#summary")
    expect(summary).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(summary).to_contain_text("partially failed")
    expect(summary).to_contain_text("2 of 3 pages done, 1 failed")
    failures = summary.locator(".failures li")
    expect(failures).to_have_count(1)
    expect(failures).to_contain_text(re.compile(r"^Page 2 \(failed\): Tesseract could not read"))
    expect(summary.locator(".grid .cell.failed")).to_have_text("2")
    expect(summary.locator(".grid .cell.done")).to_have_count(2)
    ui.shot(page, "12-failed-page-summary")

    # Retrying runs the failed page only (the button's value rides along the disabled button),
    # and an image still broken fails again.
    page.get_by_role("button", name="Retry the 1 failed page").click()
    expect(summary).to_contain_text("Last job: failed")
    expect(summary).to_contain_text("0 of 1 pages done, 1 failed")

    failures.get_by_role("link", name="Page 2").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "The last OCR of this page failed: Tesseract could not read the page image"
    )
    expect(page.locator(".crumbs .badge")).to_have_text("ocr failed")


def test_double_click_on_start_starts_one_job(ui, editors, ready_project, stack):
    """Double-clicking "Start batch OCR" sends the form once: the project gets one job."""
    slug = ready_project("browser-double-click", indices=[2, 3])
    page = ui.new_page()
    ui.sign_in(page, next(iter(editors)))
    page.goto(f"/proofing/{slug}/batch-ocr")
    posts = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))

    # A double click at a person's speed (80 ms between presses): without the form's guard
    # Chromium sends the second POST; Playwright's instant dblclick() would not show that.
    box = page.get_by_role("button", name="Start batch OCR").bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, delay=80)
    expect(page.locator("#progress").or_(page.locator("#summary"))).to_be_visible()
    assert posts == [f"{ui.base_url}/proofing/{slug}/batch-ocr"]
    # One Job row for the project, and it ran to the end.
    assert wait_for_jobs_to_end(stack, slug) == ["succeeded"]
    expect(page.locator("#summary")).to_contain_text("2 of 2 pages done")
