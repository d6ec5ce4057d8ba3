"""The batch OCR pages (app/views/batch_ocr.py): the start form, progress, start and cancel, the
status JSON, and each of them when Redis is down."""

from __future__ import annotations

import re

from flask import url_for
from sqlalchemy import select

from app import task_names
from app.extensions import db
from app.models import Job, JobState
from app.services import batch_ocr
from tests.support import ROOT
from tests.unit.views import (
    BOOK_PAGES,
    SLUG,
    assert_queue_unavailable_page,
    body,
    job_count,
    login_editor,
    login_proofreader,
    post_form,
    start_job,
)


#: The keys of GET .../batch-ocr/status (app/services/batch_ocr.py job_status), which the
#: progress page's script and `flask ocr status --json` read.
def documented_status_fields() -> set[str]:
    """The fields of the status JSON as docs/batch-ocr-task-tracking.md lists them (its table
    under "The status of a job"), which the progress page's script, `flask ocr status --json`
    and the API's readers go by."""
    doc = (ROOT / "docs" / "batch-ocr-task-tracking.md").read_text()
    section = doc.split("## The status of a job", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}


STATUS_FIELDS = documented_status_fields()


def test_proofreader_cannot_start_or_cancel_batch_ocr(client, proofreader, book, enqueued):
    """A proofreader gets 403 on start and cancel; the running job is untouched."""
    login_proofreader(client)
    page = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert page.status_code == 200
    assert "Only editors can start batch OCR." in body(page)
    assert post_form(client, f"/proofing/{SLUG}/batch-ocr", {"engine": "fake"}).status_code == 403
    assert job_count() == 0

    job_id = start_job(book)
    assert post_form(client, f"/proofing/{SLUG}/batch-ocr/cancel").status_code == 403
    assert db.session.get(Job, job_id).state == JobState.QUEUED


def test_batch_ocr_page_shows_the_start_form_when_no_job_runs(client, editor, book):
    """Without a running job the page offers the start form."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert response.status_code == 200
    text = body(response)
    assert 'id="start-form"' in text
    assert 'value="fake"' in text
    assert "Batch OCR in progress" not in text


def test_batch_ocr_page_shows_progress_while_a_job_runs(client, proofreader, book, enqueued):
    """With a running job (whoever started it) the page shows its progress, for anyone."""
    job_id = start_job(book)
    login_proofreader(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr")
    assert response.status_code == 200
    text = body(response)
    assert "Batch OCR in progress" in text
    assert job_id in text
    assert 'id="start-form"' not in text


def test_progress_grid_links_each_page_to_its_editor(app, client, proofreader, book, enqueued):
    """Every cell of the page grid opens that page's editor, and the link works."""
    start_job(book)
    login_proofreader(client)
    text = body(client.get(f"/proofing/{SLUG}/batch-ocr"))
    grid = text.split('id="grid"', 1)[1].split("</ol>", 1)[0]
    links = re.findall(r'href="([^"]+)"', grid)
    with app.test_request_context():
        expected = [url_for("pages.edit", slug=SLUG, number=n) for n in (1, 2)]
    assert links == expected
    assert all(client.get(link).status_code == 200 for link in links)


def test_start_redirects_to_progress_and_a_second_start_lands_on_the_same_job(
    client, editor, book, enqueued
):
    """The start POST answers 303 to the progress page; a second POST starts nothing new."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    form = {"engine": "fake", "pages": "all", "language": ""}
    first = post_form(client, url, form, token_from=url)
    assert (first.status_code, first.headers["Location"]) == (303, url)
    [job] = db.session.scalars(select(Job)).all()
    assert (job.engine, job.language, job.total, job.started_by_id) == (
        "fake",
        "eng",
        BOOK_PAGES,
        editor.id,
    )

    second = post_form(client, url, form, token_from=url)
    assert (second.status_code, second.headers["Location"]) == (303, url)
    assert job_count() == 1
    # The first window of pages went out once, for the one job.
    assert [k for name, k in enqueued if name == task_names.OCR_PAGE] == [
        {"job_id": job.id, "position": p} for p in range(min(BOOK_PAGES, 2))
    ]
    shown = body(client.get(url))
    assert "already running" in shown
    assert job.id in shown


def test_start_refused_by_the_service_shows_the_reason(client, editor, book, enqueued):
    """A start the service refuses (unknown engine) is a 400 with the reason on the form."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, url, {"engine": "no-such-engine"}, token_from=url)
    assert response.status_code == 400
    assert "Unknown OCR engine" in body(response)
    assert job_count() == 0
    assert enqueued == []


def test_cancel_ends_the_running_job(client, editor, book, enqueued):
    """An editor's cancel answers 303 to the batch OCR page and records the job cancelled."""
    job_id = start_job(book)
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, f"{url}/cancel", token_from=url)
    assert (response.status_code, response.headers["Location"]) == (303, url)
    db.session.expire_all()
    assert db.session.get(Job, job_id).state == JobState.CANCELLED


def test_status_json_without_a_job(client, editor, book):
    """Before any job, the status says so, with no pages."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 200
    status = response.get_json()
    assert set(status) == STATUS_FIELDS
    assert (status["state"], status["total"], status["pages"], status["task_id"]) == (
        "none",
        0,
        [],
        None,
    )


def test_status_json_of_a_running_job_has_the_documented_fields(client, editor, book, enqueued):
    """The status of a running job has every field the progress page reads, and is not
    cached."""
    job_id = start_job(book)
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    status = response.get_json()
    assert set(status) == STATUS_FIELDS
    assert (status["state"], status["task_id"], status["total"], status["queued"]) == (
        "queued",
        job_id,
        BOOK_PAGES,
        BOOK_PAGES,
    )
    assert (status["engine"], status["language"], status["percent"]) == ("fake", "eng", 0)
    assert status["pages"] == [{"number": n, "state": "queued"} for n in (1, 2)]


def test_status_json_after_the_job_ended_has_the_same_fields(client, editor, book, enqueued):
    """Once a job has ended its status comes from the database, with the same fields."""
    job_id = start_job(book)
    batch_ocr.cancel_batch_ocr(book)
    login_editor(client)
    status = client.get(f"/proofing/{SLUG}/batch-ocr/status").get_json()
    assert set(status) == STATUS_FIELDS
    assert (status["state"], status["task_id"], status["cancelled"]) == (
        "cancelled",
        job_id,
        BOOK_PAGES,
    )


def test_batch_ocr_page_is_503_when_redis_is_down(client, editor, redis_down):
    """The batch OCR page says the queue is unavailable instead of failing with a 500."""
    login_editor(client)
    assert_queue_unavailable_page(client.get(f"/proofing/{SLUG}/batch-ocr"))


def test_start_is_503_when_redis_is_down_and_starts_nothing(client, editor, redis_down):
    """Starting batch OCR while Redis is down answers 503 and records no job."""
    login_editor(client)
    url = f"/proofing/{SLUG}/batch-ocr"
    response = post_form(client, url, {"engine": "fake", "pages": "all"})
    assert_queue_unavailable_page(response)
    assert job_count() == 0


def test_status_json_is_503_json_when_redis_is_down(client, editor, redis_down):
    """The progress poll gets a 503 JSON answer it can retry on, not an HTML error."""
    login_editor(client)
    response = client.get(f"/proofing/{SLUG}/batch-ocr/status")
    assert response.status_code == 503
    assert response.get_json()["error"] == "The task queue is unavailable"


def test_unknown_project_status_is_404_json(client, editor):
    """The JSON status of an unknown project is a JSON 404."""
    login_editor(client)
    response = client.get("/proofing/nope/batch-ocr/status")
    assert response.status_code == 404
    assert response.get_json()["message"] == "There is no project 'nope'."
