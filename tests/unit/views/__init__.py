"""The web pages (app/views/) through Flask's test client, one module per blueprint; these are
the helpers the modules share (their fixtures are in conftest.py here).

Projects are made the real way (create_project + split_source on a small scan made here);
tasks are recorded by `enqueued`, Redis is fakeredis unless a test takes it down.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, Page, Project
from app.services import batch_ocr
from tests.support import csrf_token, login

#: The project of the `book` fixture, and its number of pages.
SLUG = "view-book"
BOOK_PAGES = 2


def body(response) -> str:
    return response.get_data(as_text=True)


def assert_no_traceback(response) -> None:
    text = body(response)
    assert "Traceback" not in text
    assert 'File "' not in text


def assert_redirects_to_login(response) -> None:
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def assert_queue_unavailable_page(response) -> None:
    assert response.status_code == 503
    assert "The task queue is unavailable" in body(response)
    assert "Nothing was started or changed" in body(response)
    assert_no_traceback(response)


def post_form(
    client, url: str, data: dict | None = None, *, token_from: str = "/proofing/", **kwargs
):
    """POST `data` with the CSRF token a signed-in user's page carries."""
    return client.post(
        url, data={**(data or {}), "csrf_token": csrf_token(client, token_from)}, **kwargs
    )


def login_editor(client):
    """Sign in as the `editor` fixture's user."""
    assert login(client, "edna", "editor-password").status_code == 302


def login_proofreader(client):
    """Sign in as the `proofreader` fixture's user."""
    assert login(client, "pat", "proofreader-password").status_code == 302


def page_row(number: int) -> Page:
    db.session.expire_all()
    return db.session.scalar(
        select(Page).join(Project).filter(Project.slug == SLUG, Page.number == number)
    )


def start_job(project: Project) -> str:
    outcome = batch_ocr.start_batch_ocr(
        project, engine="fake", language=None, selection="all", user=None
    )
    assert outcome.started
    return outcome.job_id


def job_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Job.id)))
