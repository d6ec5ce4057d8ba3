"""The export page (app/views/exports.py) through Flask's test client: who may export and
download, the progress and the kept files, the download's name and type, and the messages."""

from __future__ import annotations

import re

import pytest
from flask import g
from sqlalchemy import func, select

from app.extensions import db
from app.models import Export, Job
from app.services import exports
from app.services.accounts import create_user, user_named
from app.services.jobs.lifecycle import interrupt_job
from app.services.projects import set_member
from tests.support import csrf_token, login

PASSWORD = "a-long-password"


@pytest.fixture(autouse=True)
def _cheap(cheap_password_hashes):
    """Every test signs people in."""


def as_another(client):
    """`client`, forgetting the user (Flask-Login) and the CSRF token (Flask-WTF) cached in
    the app context the test holds, else one client's would answer the next client's request."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)
    return client


def signed_in(app, username: str, role: str = "proofreader"):
    create_user(username, PASSWORD, role)
    client = as_another(app.test_client())
    assert login(client, username, PASSWORD).status_code == 302
    return client


def post(client, url: str, data: dict | None = None):
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client, "/proofing/")})


def status_of(client, url: str) -> int:
    """The answer's status, with the answer closed (a download holds its file open)."""
    response = client.get(url)
    response.close()
    return response.status_code


def text(response) -> str:
    return response.get_data(as_text=True)


def test_the_project_page_links_to_the_export_page(app, book, enqueued):
    project = book()
    client = signed_in(app, "reader")
    page = text(client.get(f"/proofing/{project.slug}/"))
    assert f'href="/proofing/{project.slug}/export"' in page


def test_a_proofreader_starts_an_export_and_sees_its_progress(app, book, enqueued):
    """Anyone who sees the project may export it; the page then shows the running export
    with the batch OCR progress bar and its status URL."""
    project = book(pages=3)
    client = signed_in(app, "reader")
    form = text(client.get(f"/proofing/{project.slug}/export"))
    assert 'value="txt"' in form and 'value="txt-zip"' in form
    assert 'value="proofread-once"' in form
    answer = post(client, f"/proofing/{project.slug}/export", {"format": "txt"})
    assert answer.status_code == 303
    progress = text(client.get(f"/proofing/{project.slug}/export"))
    assert 'id="bar"' in progress and 'id="eta"' in progress
    assert f'data-status-url="/proofing/{project.slug}/export/status"' in progress
    assert "js/live-status.js" in progress and "js/job-progress.js" in progress
    status = client.get(f"/proofing/{project.slug}/export/status").get_json()
    assert (status["state"], status["kind"], status["format"], status["total"]) == (
        "queued",
        "export",
        "txt",
        3,
    )
    assert status["download_url"] is None


def test_a_finished_export_is_downloaded_with_its_name_and_type(app, book, run_tasks):
    project = book(slug="dl-book", pages=2)
    client = signed_in(app, "reader")
    post(client, "/proofing/dl-book/export", {"format": "txt"})
    run_tasks()
    status = client.get("/proofing/dl-book/export/status").get_json()
    assert status["state"] == "succeeded"
    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert download.headers["Content-Disposition"] == "attachment; filename=dl-book.txt"
    assert download.data.decode().startswith("=== page 1 ===\ntext of page 1\n")
    download.close()
    page = text(client.get("/proofing/dl-book/export"))
    assert status["download_url"] in page and "up to date" in page
    assert project.slug in page


def test_a_zip_export_is_named_after_its_format(app, book, run_tasks):
    book(slug="zip-book", pages=1)
    client = signed_in(app, "reader")
    post(client, "/proofing/zip-book/export", {"format": "txt-zip"})
    run_tasks()
    export = db.session.scalar(select(Export))
    download = client.get(f"/proofing/zip-book/export/files/{export.id}")
    assert download.headers["Content-Type"] == "application/zip"
    assert download.headers["Content-Disposition"] == "attachment; filename=zip-book-txt-zip.zip"
    assert download.data[:2] == b"PK"
    download.close()


def test_asking_again_for_an_unchanged_export_points_at_the_kept_file(app, book, run_tasks):
    book(slug="kept-book", pages=1)
    client = signed_in(app, "reader")
    post(client, "/proofing/kept-book/export", {"format": "txt"})
    run_tasks()
    answer = post(client, "/proofing/kept-book/export", {"format": "txt"})
    assert answer.status_code == 303
    export = db.session.scalar(select(Export))
    assert answer.headers["Location"].endswith(f"/export?ready={export.id}#kept")
    page = text(client.get(answer.headers["Location"]))
    assert "has not changed since this export was last made" in page
    assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_another_export_while_one_runs_says_which_one_runs(app, book, enqueued):
    book(slug="busy-book", pages=2)
    client = signed_in(app, "reader")
    post(client, "/proofing/busy-book/export", {"format": "txt"})
    answer = post(client, "/proofing/busy-book/export", {"format": "txt-zip"})
    assert answer.status_code == 303
    page = text(client.get("/proofing/busy-book/export"))
    assert re.search(
        r"An export \(Plain text \(one file\) of every page\) started .* is running", page
    )
    assert 'id="progress"' in page  # the running export, to follow
    assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_a_bad_choice_is_refused_with_its_reason(app, book, enqueued):
    book(slug="bad-book", pages=1)
    client = signed_in(app, "reader")
    answer = post(client, "/proofing/bad-book/export", {"format": "docx"})
    assert answer.status_code == 400
    assert "Unknown export format" in text(answer)
    assert not enqueued


def test_a_private_project_is_404_to_a_non_member_everywhere(app, book, run_tasks):
    """The page, its status, start and the download are 404 to someone outside a private
    project (its name is not told), and work for a member."""
    project = book(slug="secret-book", pages=1)
    project.is_private = True
    db.session.commit()
    outsider = signed_in(app, "outsider")
    member = signed_in(app, "member")
    set_member(project, user_named("member"), "proofreader")
    assert post(member, "/proofing/secret-book/export", {"format": "txt"}).status_code == 303
    run_tasks()
    export = db.session.scalar(select(Export))
    urls = [
        "/proofing/secret-book/export",
        "/proofing/secret-book/export/status",
        f"/proofing/secret-book/export/files/{export.id}",
    ]
    for url in urls:
        assert status_of(as_another(outsider), url) == 404, url
        assert status_of(as_another(member), url) == 200, url
    as_another(outsider)
    refused = outsider.post("/proofing/secret-book/export", data={"format": "txt"})
    assert refused.status_code in (400, 404)  # no CSRF token to be had from a hidden page
    assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_a_download_of_another_projects_file_is_404(app, book, run_tasks):
    book(slug="one-book", pages=1)
    book(slug="two-book", pages=1)
    client = signed_in(app, "reader")
    post(client, "/proofing/one-book/export", {"format": "txt"})
    run_tasks()
    export = db.session.scalar(select(Export))
    assert status_of(client, f"/proofing/two-book/export/files/{export.id}") == 404
    assert status_of(client, "/proofing/one-book/export/files/999") == 404
    assert status_of(client, f"/proofing/one-book/export/files/{export.id}") == 200


def test_signed_out_is_sent_to_sign_in(app, book):
    book(slug="anon-book", pages=1)
    answer = app.test_client().get("/proofing/anon-book/export")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_an_interrupted_export_offers_resume_which_finishes_it(app, book, enqueued, run_tasks):
    book(slug="resume-book", pages=3)
    client = signed_in(app, "reader")
    post(client, "/proofing/resume-book/export", {"format": "txt"})
    job = db.session.scalar(select(Job))
    enqueued.clear()
    exports.run_page(job.id, 0, worker="test:1")
    enqueued.clear()
    interrupt_job(job, "no page started, finished or beat for 30 s (workers lost?)")
    page = text(client.get("/proofing/resume-book/export"))
    assert "Last export: interrupted" in page
    assert "workers lost?" in page
    assert "Resume: render the pages not yet done" in page
    assert post(client, "/proofing/resume-book/export/resume").status_code == 303
    run_tasks()
    status = client.get("/proofing/resume-book/export/status").get_json()
    assert status["state"] == "succeeded", status
    assert status["total"] == 2  # only the pages without a part
    download = client.get(status["download_url"])
    assert download.data.decode().count("=== page") == 3
    download.close()
