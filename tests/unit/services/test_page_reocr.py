"""'OCR this page again' (app/services/page_reocr.py): the request, the worker's part, the
result as a diff against the box, and discarding; with fakeredis and a stand-in engine."""

from __future__ import annotations

import json

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from app import queue as queue_module
from app import task_names
from app.engines import OcrError
from app.extensions import db
from app.models import Job, JobKind, Page
from app.services import page_reocr
from tests.support import add_ready_project


@pytest.fixture
def page(app, fake_tesseract) -> Page:
    project = add_ready_project("reocr-book", 2)
    return db.session.query(Page).filter_by(project_id=project.id, number=1).one()


def redis(app):
    return app.extensions["redis"]


def test_a_request_is_kept_with_a_ttl_and_sent_to_the_interactive_queue(
    app, page, enqueued, monkeypatch
):
    """The request is recorded as queued for at most an hour, and its task goes to the
    interactive queue with ids only; with no worker alive it says so."""
    queues = []
    real = queue_module.enqueue  # the `enqueued` fixture's recorder

    def record(name, *, queue=None, **kwargs):
        queues.append(queue)
        return real(name, queue=queue, **kwargs)

    monkeypatch.setattr(queue_module, "enqueue", record)
    token, warning = page_reocr.request_reocr(page)
    key = page_reocr.result_key(page.id, token)
    record_ = json.loads(redis(app).get(key))
    assert record_["state"] == "queued"
    assert (record_["engine"], record_["language"]) == ("tesseract", "eng")
    assert 0 < redis(app).ttl(key) <= 3600
    assert enqueued == [(task_names.OCR_PAGE_PREVIEW, {"page_id": page.id, "token": token})]
    assert queues == [task_names.INTERACTIVE_QUEUE]
    assert "No running worker takes tasks from the 'interactive' queue" in warning


def test_the_result_is_a_diff_against_the_box_and_never_touches_the_page(
    app, page, enqueued, fake_tesseract
):
    """The worker's text is kept aside; the page's text and version stay as they were, and the
    result is the word diff from the text posted (the box's) to the new OCR."""
    page.text, page.version = "the saved text", 3
    db.session.commit()
    fake_tesseract.answers[1] = "the new OCR text"
    token, _ = page_reocr.request_reocr(page)
    assert page_reocr.reocr_result(page, token, "x").state == "queued"

    page_reocr.run_reocr(page.id, token)
    result = page_reocr.reocr_result(page, token, "the typed text")
    assert result.state == "done"
    assert result.text == "the new OCR text"
    assert result.diff == "the <del>typed</del><ins>new OCR</ins> text"
    assert (result.deleted, result.inserted) == (1, 2)
    db.session.refresh(page)
    assert (page.text, page.version) == ("the saved text", 3)


def test_an_engine_error_is_a_failed_result_with_its_reason(app, page, enqueued, fake_tesseract):
    fake_tesseract.answers[1] = OcrError("Tesseract could not read the page image")
    token, _ = page_reocr.request_reocr(page)
    page_reocr.run_reocr(page.id, token)
    result = page_reocr.reocr_result(page, token, "")
    assert (result.state, result.error) == ("failed", "Tesseract could not read the page image")


def test_a_discarded_request_stays_discarded(app, page, enqueued, fake_tesseract):
    """Discarding while the worker runs: the worker's outcome is not written back."""
    token, _ = page_reocr.request_reocr(page)
    page_reocr.discard_result(page, token)
    page_reocr.run_reocr(page.id, token)
    page_reocr.fail_reocr(page.id, token, "over time")
    assert redis(app).get(page_reocr.result_key(page.id, token)) is None
    assert fake_tesseract.calls == []
    assert page_reocr.reocr_result(page, token, "").state == "expired"


def test_a_task_out_of_time_ends_the_request_as_failed(app, page, enqueued):
    token, _ = page_reocr.request_reocr(page)
    page_reocr.fail_reocr(page.id, token, "the OCR took longer than the page time limit")
    result = page_reocr.reocr_result(page, token, "")
    assert (result.state, result.error) == (
        "failed",
        "the OCR took longer than the page time limit",
    )


def test_the_engine_is_the_projects_latest_ocr_jobs(app, page, enqueued, fake_engine):
    """A book OCR'd with another engine is read again with it."""
    assert page_reocr.project_engine(page) == "tesseract"
    db.session.add(
        Job(
            id="job-1",
            project_id=page.project_id,
            kind=JobKind.OCR,
            engine="fake",
            language="eng",
            selection="all",
            state="succeeded",
        )
    )
    db.session.commit()
    assert page_reocr.project_engine(page) == "fake"


def test_an_unusable_engine_is_refused_with_a_reason(app, page, enqueued):
    page.project.language = "xyz"
    db.session.commit()
    with pytest.raises(page_reocr.ReocrError, match="xyz"):
        page_reocr.request_reocr(page)
    assert enqueued == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SoftTimeLimitExceeded(), "the OCR took longer than the page time limit"),
        (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError: division by"),
    ],
)
def test_the_task_ends_a_request_it_cannot_finish_as_failed(
    app, page, enqueued, fake_tesseract, error, reason
):
    """worker/tasks.py ocr_page_preview, run through Celery's apply(): a time limit or a bug
    fails the request with a reason, so the editor stops waiting."""
    from worker import tasks

    fake_tesseract.answers[1] = error
    token, _ = page_reocr.request_reocr(page)
    tasks.ocr_page_preview.apply(kwargs={"page_id": page.id, "token": token})
    result = page_reocr.reocr_result(page, token, "")
    assert result.state == "failed"
    assert result.error.startswith(reason)
