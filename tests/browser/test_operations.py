"""Issue 10 in a real browser: the unread badge, the notifications page, following a project's
jobs from its page, the admins' dashboard with the real worker, and the desktop notification
script a progress page uses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.job_tracking import JobRecord
from app.models import JobKind, JobState, Project, User, WebhookDelivery
from app.services import job_events
from app.services.accounts import create_user
from tests.browser.conftest import PASSWORD
from tests.support import add_ready_project, make_job

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def end_jobs(app, slug: str, username: str) -> None:
    """Two jobs of `slug`, started by `username`, that have ended (one with a failed page),
    and one still running on `slug`-live; the ended ones go through job_events as the
    lifecycle's would. The running one is as a job started with its upload whose pages but the
    first are still being prepared: the watchdog leaves it running (it has no page to send)."""
    with app.app_context():
        add_ready_project(slug, 3)
        add_ready_project(f"{slug}-live", 3)
        starter = db.session.query(User).filter_by(username=username).one()
        for n, (state, outcomes) in enumerate(
            [
                (JobState.SUCCEEDED, ["done", "done", "done"]),
                (JobState.PARTIALLY_FAILED, ["done", "failed", "done"]),
                (JobState.RUNNING, ["done", "queued", "queued"]),
            ]
        ):
            running = state == JobState.RUNNING
            project = (
                db.session.query(Project).filter_by(slug=f"{slug}-live" if running else slug).one()
            )
            job = make_job(
                project,
                state=state,
                started_by=starter,
                outcomes=outcomes,
                ended_ago=None if running else timedelta(minutes=5 - n),
                reason="Tesseract failed: image too small to scale",
                job_id=f"{slug}-{n}",
            )
            for outcome in outcomes:
                if outcome != "queued":
                    job_events.page_finished(job, outcome, 1.2, "browser-host@localhost")
            job_events.job_started(job)
            if running:
                tracker = app.extensions["job_trackers"][JobKind.OCR]
                record = JobRecord(
                    task_id=job.id,
                    started_at=job.started_at.isoformat() + "+00:00",
                    project_slug=project.slug,
                    total=3,
                    engine="tesseract",
                    language="eng",
                )
                assert tracker.claim(record, preparing=True) is None
                tracker.make_ready(record, [0])
                tracker.finish_page(record, 0, "done")
            else:
                job_events.job_ended(job)
        db.session.remove()


def test_badge_notifications_following_and_the_dashboard(ui, stack, editors):
    # An editor of this test's own: the shared stack's other flows notify the shared editors of
    # the jobs they start.
    _, ravi = editors
    edna = "browser-ops-edna"
    with stack.app.app_context():
        create_user(edna, PASSWORD, "editor")
        create_user("browser-ada", PASSWORD, "admin")
        db.session.remove()
    end_jobs(stack.app, "browser-ops", edna)

    page = ui.new_page()
    ui.sign_in(page, edna)
    badge = page.locator("#unread-count")
    expect(badge).to_have_text("2")
    expect(page.get_by_role("link", name="Notifications, 2 unread")).to_be_visible()
    ui.shot(page, "ops-01-badge")

    page.get_by_role("link", name="Notifications, 2 unread").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    items = page.locator("li.notification")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Batch OCR of browser-ops: partially failed")
    expect(items.first).to_contain_text("2 of 3 pages done, 1 failed, 0 skipped.")
    expect(page.locator("li.notification.unread")).to_have_count(2)
    expect(page.locator("#unread-count")).to_have_count(0)  # read, now they are shown
    ui.shot(page, "ops-02-notifications")
    items.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"{ui.base_url}/proofing/browser-ops/batch-ocr/jobs/.+"))
    page.goto("/notifications")
    expect(page.locator("li.notification.unread")).to_have_count(0)

    # The other editor follows the project's jobs from its page.
    other = ui.new_page()
    ui.sign_in(other, ravi)
    expect(other.locator("#unread-count")).to_have_count(0)
    other.goto("/proofing/browser-ops/")
    settings = other.locator("#settings")
    settings.get_by_label("Tell me when any job of this project ends").check()
    settings.get_by_role("button", name="Save", exact=True).click()
    expect(other.get_by_role("status")).to_contain_text("when any job of this project ends")
    expect(other.locator("#settings").get_by_label("Tell me when any job")).to_be_checked()
    ui.shot(other, "ops-03-project-settings")

    admin = ui.new_page()
    ui.sign_in(admin, "browser-ada")
    admin.get_by_role("link", name="Dashboard").click()
    expect(admin.get_by_role("heading", name="Dashboard")).to_be_visible()
    worker_name = stack.workers[0].name
    expect(admin.locator("#workers")).to_contain_text(worker_name)
    expect(admin.locator("#workers")).to_contain_text("browser-host@localhost")
    expect(admin.locator("#queues")).to_contain_text("interactive")
    expect(admin.locator("#jobs")).to_contain_text("browser-ops-live")
    expect(admin.locator("#jobs")).to_contain_text("1 of 3 finished")
    expect(admin.locator("#failures")).to_contain_text("image too small to scale")
    expect(admin.locator("#throughput")).to_contain_text("pages per hour")
    ui.shot(admin, "ops-04-dashboard")

    # An editor is refused the dashboard.
    ui.expected_statuses.add(403)
    response = page.goto("/admin")
    assert response.status == 403
    expect(page.get_by_text("Only admins can see the dashboard.")).to_be_visible()


def test_the_desktop_notification_script_tells_of_a_watched_jobs_end_once(ui, editors):
    edna = next(iter(editors))
    page = ui.new_page()
    ui.sign_in(page, edna)
    # Chromium headless shows no desktop; the API is replaced by a recorder whose permission
    # starts as the user's choice still open.
    page.evaluate(
        """() => {
            window.shown = [];
            window.Notification = function (title, options) {
                window.shown.push([title, options.body, options.tag]);
            };
            window.Notification.permission = 'default';
            window.Notification.requestPermission = function () {
                window.Notification.permission = 'granted';
                return Promise.resolve('granted');
            };
            const button = document.createElement('button');
            button.dataset.desktopNotify = '';
            button.hidden = true;
            button.textContent = 'Tell me on the desktop when it ends';
            document.querySelector('main').prepend(button);
        }"""
    )
    page.add_script_tag(url="/static/js/desktop-notify.js")
    ask = page.get_by_role("button", name="Tell me on the desktop when it ends")
    expect(ask).to_be_visible()
    ask.click()
    expect(ask).to_be_hidden()
    results = page.evaluate(
        """() => [
            DesktopNotify.update({state: 'succeeded', task_id: 'seen-over', total: 1, done: 1}),
            DesktopNotify.update({state: 'running', task_id: 't1', total: 3, done: 1}),
            DesktopNotify.update({state: 'partially_failed', task_id: 't1', project: 'gita',
                                  total: 3, done: 2, failed: 1, skipped: 0}),
            DesktopNotify.update({state: 'partially_failed', task_id: 't1', total: 3, done: 2}),
            DesktopNotify.jobEnded({state: 'running', task_id: 't2'}),
        ]"""
    )
    assert results == [False, False, True, False, False]
    assert page.evaluate("window.shown") == [
        ["The job of gita finished with failed pages", "2 of 3 pages done, 1 failed.", "job-t1"]
    ]


def test_webhook_card_and_deleting_a_project(ui, stack, editors):
    edna = next(iter(editors))
    with stack.app.app_context():
        add_ready_project("browser-hooked", 2)
    config = stack.app.config
    saved = (config["WEBHOOK_SECRET"], config["WEBHOOK_ALLOW_PRIVATE"])
    config["WEBHOOK_SECRET"] = "browser-secret"
    try:
        page = ui.new_page()
        ui.sign_in(page, edna)
        page.goto("/proofing/browser-hooked/")
        card = page.locator("#settings")
        card.get_by_label("URL").fill("http://127.0.0.1:9/hook")
        card.get_by_role("button", name="Save webhook").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "The host 127.0.0.1 resolves to 127.0.0.1, a loopback address"
        )
        ui.shot(page, "ops-05-webhook-refused")

        config["WEBHOOK_ALLOW_PRIVATE"] = True
        page.locator("#settings").get_by_label("URL").fill("http://127.0.0.1:9/hook")
        page.locator("#settings").get_by_role("button", name="Save webhook").click()
        expect(page.get_by_role("status")).to_contain_text("now POSTed to http://127.0.0.1:9/hook")
        with stack.app.app_context():
            project = db.session.query(Project).filter_by(slug="browser-hooked").one()
            db.session.add_all(
                [
                    WebhookDelivery(
                        project_id=project.id,
                        url=project.webhook_url,
                        event="job.ended",
                        body="{}",
                        state="failed",
                        attempts=8,
                        last_status_code=503,
                        last_error="HTTP 503: busy",
                    ),
                    WebhookDelivery(
                        project_id=project.id,
                        url=project.webhook_url,
                        event="job.ended",
                        body="{}",
                        state="delivered",
                        attempts=1,
                        last_status_code=200,
                    ),
                ]
            )
            db.session.commit()
            db.session.remove()
        page.reload()
        deliveries = page.locator("#deliveries tbody tr")
        expect(deliveries).to_have_count(2)
        expect(deliveries.first).to_contain_text("delivered")
        expect(deliveries.nth(1)).to_contain_text("HTTP 503: busy")
        ui.shot(page, "ops-06-webhook-deliveries")
    finally:
        config["WEBHOOK_SECRET"], config["WEBHOOK_ALLOW_PRIVATE"] = saved

    page.get_by_role("link", name="Delete this project…").click()
    expect(page.get_by_role("heading", name="Delete browser-hooked?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("2 pages")
    page.get_by_label("Type browser-hooked to confirm").fill("browser-hooked")
    ui.shot(page, "ops-07-delete-confirm")
    page.get_by_role("button", name="Delete the project").click()
    expect(page.get_by_role("status")).to_contain_text("browser-hooked and everything in it")
    expect(page.get_by_role("link", name="browser-hooked", exact=True)).to_have_count(0)
