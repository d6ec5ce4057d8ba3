"""Error pages as the views answer them (app/errors.py): a form without its CSRF token, a
forged token, and a bug in a view, none showing a traceback."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, JobState, Project
from app.views import projects as projects_views
from tests.unit.views import (
    SLUG,
    assert_no_traceback,
    body,
    job_count,
    login_editor,
    page_row,
    start_job,
)


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/login", {"username": "edna", "password": "editor-password"}),
        ("/proofing/create-project", {"slug": "no-token", "title": "t", "language": "eng"}),
        (f"/proofing/{SLUG}/1/", {"text": "no token", "version": "0"}),
        (f"/proofing/{SLUG}/batch-ocr", {"engine": "fake", "pages": "all"}),
        (f"/proofing/{SLUG}/batch-ocr/cancel", {}),
        ("/logout", {}),
    ],
    ids=["login", "create", "page-save", "batch-start", "batch-cancel", "logout"],
)
def test_post_without_csrf_token_is_refused(client, editor, book, enqueued, url, data):
    """A POST without its CSRF token is refused with 400 and a readable page, changing nothing."""
    login_editor(client)
    job_id = start_job(book) if url.endswith("/cancel") else None
    sent = list(enqueued)
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert "The form expired" in body(response)
    assert_no_traceback(response)
    assert page_row(1).version == 0
    assert db.session.scalar(select(func.count(Project.id))) == 1
    assert enqueued == sent
    assert job_count() == (1 if job_id else 0)
    if job_id:
        assert db.session.get(Job, job_id).state == JobState.QUEUED
    assert client.get("/proofing/").status_code == 200  # still signed in


def test_post_with_a_forged_csrf_token_is_refused(client, editor, book):
    """A token that this server did not sign is as bad as none."""
    login_editor(client)
    response = client.post(
        f"/proofing/{SLUG}/1/", data={"text": "forged", "version": "0", "csrf_token": "x" * 40}
    )
    assert response.status_code == 400
    assert page_row(1).version == 0


def test_unexpected_error_is_a_500_page_without_a_traceback(client, editor, book, monkeypatch):
    """A bug in a view shows a plain 500 page; the details go to the log, not the browser."""

    def broken(project):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(projects_views, "split_state", broken)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/")
    assert response.status_code == 500
    assert "Something went wrong" in body(response)
    assert "internal detail" not in body(response)
    assert_no_traceback(response)
