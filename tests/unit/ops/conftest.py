"""Fixtures of the operations tests: an app with no context held (so that several signed-in
clients never share Flask-Login's cached user), and ended jobs made directly in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Job, JobKind, JobPage, JobState, Page, Project, User, utcnow
from app.services.accounts import create_user
from tests.support import add_ready_project, login, make_app, use_fakeredis

PASSWORD = "ops-password"


@pytest.fixture
def web(tmp_path):
    app = make_app(tmp_path, WEBHOOK_SECRET="test-webhook-secret")
    use_fakeredis(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def users(web) -> dict[str, int]:
    """An admin, two editors and a proofreader: name -> id."""
    with web.app_context():
        made = {
            name: create_user(name, PASSWORD, role).id
            for name, role in (
                ("ada", "admin"),
                ("edna", "editor"),
                ("ravi", "editor"),
                ("pat", "proofreader"),
            )
        }
        db.session.remove()
    return made


def client_of(app, username: str):
    client = app.test_client()
    response = login(client, username, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def ready_project(app, slug: str, pages: int = 3) -> int:
    with app.app_context():
        return add_ready_project(slug, pages).id


def make_job(
    project: Project,
    *,
    state: str = JobState.SUCCEEDED,
    kind: str = JobKind.OCR,
    started_by: User | None = None,
    outcomes: list[str] | None = None,
    ended_ago: timedelta | None = timedelta(minutes=1),
    reason: str = "engine said no",
    job_id: str | None = None,
) -> Job:
    """A job over the project's first pages, one JobPage per outcome, counts to match."""
    outcomes = outcomes if outcomes is not None else ["done"] * len(project.pages)
    pages = db.session.query(Page).filter_by(project_id=project.id).order_by(Page.number).all()
    finished = None if ended_ago is None else utcnow() - ended_ago
    job = Job(
        id=job_id or f"job-{project.slug}-{db.session.query(Job).count() + 1}",
        kind=kind,
        project_id=project.id,
        engine="tesseract" if kind == JobKind.OCR else None,
        language="eng" if kind == JobKind.OCR else None,
        selection="all",
        state=state,
        started_by_id=started_by.id if started_by else None,
        started_at=(finished or utcnow()) - timedelta(minutes=5),
        finished_at=finished,
        total=len(outcomes),
        done=outcomes.count("done"),
        failed=outcomes.count("failed"),
        skipped=outcomes.count("skipped"),
    )
    db.session.add(job)
    db.session.flush()
    for position, (page, outcome) in enumerate(zip(pages, outcomes, strict=False)):
        db.session.add(
            JobPage(
                job_id=job.id,
                position=position,
                page_id=page.id,
                state=outcome,
                reason=reason if outcome == "failed" else None,
                finished_at=finished if outcome != "queued" else None,
            )
        )
    db.session.commit()
    return job
