"""Every job on record: the project's job history, /jobs for admins, /api/jobs with a session
or an API token, and `flask ocr jobs`, each with the visibility rules of projects."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from app.extensions import db
from app.models import (
    ItemState,
    Job,
    JobKind,
    JobPage,
    JobState,
    Page,
    Project,
    ProjectMember,
    utcnow,
)
from app.services import jobs
from app.services.accounts import create_user
from app.services.api_tokens import issue_token
from tests.support import add_ready_project, login

PASSWORD = "job-api-password"


@pytest.fixture
def people(app):
    return {
        role: create_user(f"{role}-user", PASSWORD, role)
        for role in ("proofreader", "editor", "admin")
    }


def ended_job(slug: str, state: str, *, minutes_ago: int, engine: str = "tesseract", by=None):
    """An ended OCR job of project `slug`, its pages done except the last, failed."""
    project = db.session.scalar(select(Project).filter_by(slug=slug))
    pages = db.session.scalars(select(Page).filter_by(project_id=project.id)).all()
    started = utcnow() - timedelta(minutes=minutes_ago)
    job = Job(
        id=f"{slug}-{minutes_ago}",
        kind=JobKind.OCR,
        project_id=project.id,
        engine=engine,
        language="eng",
        selection="all",
        state=state,
        started_by_id=by.id if by else None,
        started_at=started,
        finished_at=started + timedelta(seconds=42),
        total=len(pages),
        done=len(pages) - 1,
        failed=1,
    )
    db.session.add(job)
    for position, page in enumerate(pages):
        last = position == len(pages) - 1
        db.session.add(
            JobPage(
                job_id=job.id,
                position=position,
                page_id=page.id,
                state=ItemState.FAILED if last else ItemState.DONE,
                reason="the scan is unreadable" if last else None,
            )
        )
    db.session.commit()
    return job


@pytest.fixture
def books(app, people, enqueued):
    """A public book with two ended jobs and a running one; a private book with one job."""
    add_ready_project("open-book", 3)
    add_ready_project("closed-book", 2)
    closed = db.session.scalar(select(Project).filter_by(slug="closed-book"))
    closed.is_private = True
    db.session.add(ProjectMember(project_id=closed.id, user_id=people["editor"].id, role="editor"))
    db.session.commit()
    old = ended_job("open-book", JobState.SUCCEEDED, minutes_ago=90, by=people["editor"])
    newer = ended_job("open-book", JobState.PARTIALLY_FAILED, minutes_ago=30, engine="google")
    private = ended_job("closed-book", JobState.FAILED, minutes_ago=60, by=people["editor"])
    open_book = db.session.scalar(select(Project).filter_by(slug="open-book"))
    page_ids = [p.id for p in open_book.pages]
    running = jobs.start_job(
        open_book,
        JobKind.OCR,
        page_ids=page_ids,
        selection="all",
        user=people["admin"],
        engine="tesseract",
        language="eng",
    )
    return {"old": old.id, "newer": newer.id, "private": private.id, "running": running.job_id}


def bearer(user) -> dict:
    # These tests run inside the app's context, which the test client's requests share:
    # forget whoever the previous request signed in (Flask-Login keeps them in `g`).
    g.pop("_login_user", None)
    return {"Authorization": f"Bearer {issue_token(user)}"}


def sign_in_fresh(app, username: str):
    """A new browser signed in as `username` (its CSRF token, also kept in `g`, its own)."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)
    browser = app.test_client()
    assert login(browser, username, PASSWORD).status_code == 302
    return browser


def test_the_api_answers_401_without_a_session_or_token(client, books):
    for url in ("/api/jobs", f"/api/jobs/{books['old']}"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "flask users token" in response.get_json()["message"]
    wrong = client.get("/api/jobs", headers={"Authorization": "Bearer ocrp_forged"})
    assert wrong.status_code == 401


def test_a_token_lists_the_jobs_of_projects_its_user_may_see_running_first(client, books, people):
    listed = client.get("/api/jobs", headers=bearer(people["proofreader"])).get_json()
    ids = [job["task_id"] for job in listed["jobs"]]
    assert ids == [books["running"], books["newer"], books["old"]]
    assert listed["total"] == 3
    running = listed["jobs"][0]
    assert (running["state"], running["project"], running["started_by"]) == (
        "queued",
        "open-book",
        "admin-user",
    )
    assert running["url"].endswith(f"/proofing/open-book/batch-ocr/jobs/{books['running']}")

    member = client.get("/api/jobs", headers=bearer(people["editor"])).get_json()
    assert books["private"] in [job["task_id"] for job in member["jobs"]]


def test_a_job_of_a_private_project_is_a_404_to_those_outside_it(client, books, people):
    outsider = bearer(people["proofreader"])
    assert client.get(f"/api/jobs/{books['private']}", headers=outsider).status_code == 404
    assert client.get("/api/jobs/no-such-job", headers=outsider).status_code == 404
    inside = client.get(f"/api/jobs/{books['private']}", headers=bearer(people["editor"]))
    assert inside.status_code == 200


def test_one_job_carries_the_status_fields_and_every_pages_outcome(client, books, people):
    detail = client.get(f"/api/jobs/{books['newer']}", headers=bearer(people["proofreader"]))
    job = detail.get_json()
    assert detail.headers["Cache-Control"] == "no-store"
    assert set(jobs.NO_JOB.to_dict()) <= set(job)
    assert (job["state"], job["engine"], job["done"], job["failed"]) == (
        "partially_failed",
        "google",
        2,
        1,
    )
    assert job["pages"] == [
        {"number": 1, "state": "done"},
        {"number": 2, "state": "done"},
        {"number": 3, "state": "failed", "reason": "the scan is unreadable"},
    ]
    assert job["duration_seconds"] == 42


def test_the_api_filters_and_pages_and_refuses_an_unknown_state(client, books, people):
    headers = bearer(people["admin"])

    def ids(query: str) -> list[str]:
        answer = client.get(f"/api/jobs?{query}", headers=headers).get_json()
        return [job["task_id"] for job in answer["jobs"]]

    assert ids("project=closed-book") == [books["private"]]
    assert ids("state=succeeded") == [books["old"]]
    assert ids("engine=google") == [books["newer"]]
    assert ids("started_by=editor-user") == [books["private"], books["old"]]
    first = client.get("/api/jobs?per_page=2&page=1", headers=headers).get_json()
    second = client.get("/api/jobs?per_page=2&page=2", headers=headers).get_json()
    assert (first["total"], first["pages"], len(first["jobs"]), len(second["jobs"])) == (4, 2, 2, 2)
    refused = client.get("/api/jobs?state=exploded", headers=headers)
    assert refused.status_code == 400
    assert "Unknown state 'exploded'" in refused.get_json()["message"]


def test_jobs_page_is_for_admins_and_shows_every_project(app, books, people):
    assert sign_in_fresh(app, "editor-user").get("/jobs").status_code == 403
    client = sign_in_fresh(app, "admin-user")
    page = client.get("/jobs").get_data(as_text=True)
    for job_id in books.values():
        assert job_id in page or f"/jobs/{job_id}" in page
    assert page.index("open-book") < page.index("closed-book")  # the running job comes first
    failed_only = client.get("/jobs?state=failed").get_data(as_text=True)
    assert "closed-book" in failed_only and "open-book</a>" not in failed_only


def test_the_batch_ocr_page_lists_the_projects_jobs_and_each_opens_its_summary(
    client, books, people, app
):
    jobs.cancel_job(db.session.scalar(select(Project).filter_by(slug="open-book")), JobKind.OCR)
    login(client, "proofreader-user", PASSWORD)
    page = client.get("/proofing/open-book/batch-ocr").get_data(as_text=True)
    history = page[page.index('id="history"') :]
    links = [
        history.index(f"/batch-ocr/jobs/{books[name]}") for name in ("running", "newer", "old")
    ]
    assert links == sorted(links), "newest first"
    assert "admin-user" in history and "42 s" in history

    summary = client.get(f"/proofing/open-book/batch-ocr/jobs/{books['newer']}")
    text = summary.get_data(as_text=True)
    assert summary.status_code == 200
    assert "partially failed" in text and "the scan is unreadable" in text
    other = client.get(f"/proofing/open-book/batch-ocr/jobs/{books['private']}")
    assert other.status_code == 404


def test_cli_lists_jobs_as_json_and_refuses_an_unknown_state(app, books):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["ocr", "jobs", "--project", "open-book", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [job["task_id"] for job in json.loads(listed.output)] == [
        books["running"],
        books["newer"],
        books["old"],
    ]
    refused = runner.invoke(args=["ocr", "jobs", "--state", "exploded"])
    assert refused.exit_code == 1
    assert "error: Unknown state 'exploded'" in refused.output
