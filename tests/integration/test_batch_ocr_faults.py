"""Batch OCR when things go wrong, on the real stack: unreadable and blank pages, cancel and
resume, two starts at once, corrupt Redis records, Redis down, a page over its time limit, a
lost worker.

Tests that break something (stop Redis, limit the page time, run without a worker) build their
own Stack (`own_stack`), so the session's shared stack is never disturbed. Requests from the
test client are made outside any app context: inside one, Flask would reuse it for the request
and the view would share the test's database session and `g`.
"""

from __future__ import annotations

import html
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.job_tracking import JobRecord, job_key, pages_key
from app.models import Job, JobPage, JobState, Page, Project, Revision
from app.queue import QueueUnavailable
from app.services import batch_ocr
from app.services.batch_ocr import BatchOcrError
from tests.support import (
    corpus,
    csrf_token,
    editor_client,
    make_ready_project,
    multipage_pdf,
    split_project,
    tesseract_cli,
    wait_for,
    wait_for_job_end,
)

pytestmark = pytest.mark.integration


# -- helpers -------------------------------------------------------------------------------


pdf_of = multipage_pdf


def start(project: Project, selection: str = "unedited") -> batch_ocr.StartOutcome:
    return batch_ocr.start_batch_ocr(
        project, engine="tesseract", language=None, selection=selection, user=None
    )


def revisions_by_job(page_id: int) -> dict[str | None, int]:
    rows = db.session.execute(
        select(Revision.job_id, func.count()).filter_by(page_id=page_id).group_by(Revision.job_id)
    ).all()
    return dict(rows)


def job_count(project_id: int) -> int:
    return db.session.scalar(select(func.count(Job.id)).filter_by(project_id=project_id))


# -- pages that cannot be read, pages with nothing on them ---------------------------------


def test_unreadable_page_fails_alone_and_retry_failed_reruns_only_it(stack, tmp_path):
    """A truncated page image fails that page with a readable reason while the others are
    done; after the image is restored, "retry failed" re-runs that page only and succeeds."""
    redis = stack.app.extensions["redis"]
    data_dir = Path(stack.app.config["DATA_DIR"])
    with stack.app.app_context():
        project = make_ready_project("faults-unreadable", pdf_of(tmp_path / "p.pdf", [2, 3, 2]))
        slug, broken_id = project.slug, project.pages[1].id
        image = data_dir / project.pages[1].image_path
    good = image.read_bytes()
    image.write_bytes(good[: len(good) // 3])  # what a full disk or a broken copy leaves

    with stack.app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=slug))
        first = start(project)
        assert first.started
        wait_for_job_end(project, 120)
    assert redis.get(job_key(slug)) is None

    client = editor_client(stack.app)
    status = client.get(f"/proofing/{slug}/batch-ocr/status").get_json()
    assert status["state"] == "partially_failed", status
    assert [p["state"] for p in status["pages"]] == ["done", "failed", "done"], status
    reason = status["pages"][1]["reason"]
    assert "could not read the page image" in reason, reason
    assert "internal error" not in reason and "Traceback" not in reason, reason
    # The project page shows the same reason.
    assert reason in html.unescape(client.get(f"/proofing/{slug}/").get_data(as_text=True))

    image.write_bytes(good)
    with stack.app.app_context():
        project = db.session.scalar(select(Project).filter_by(slug=slug))
        retry = start(project, selection="failed")
        assert retry.started
        job_pages = db.session.scalars(select(JobPage).filter_by(job_id=retry.job_id)).all()
        assert [jp.page_id for jp in job_pages] == [broken_id]
        status = wait_for_job_end(project, 120)
        assert status["state"] == "succeeded", status
        assert (status["total"], status["done"]) == (1, 1)
        page = db.session.get(Page, broken_id)
        assert (page.ocr_state, page.ocr_error) == ("done", None)
        assert page.text == tesseract_cli(image, "eng")
        for other in project.pages:
            expected = {retry.job_id: 1} if other.id == broken_id else {first.job_id: 1}
            assert revisions_by_job(other.id) == expected, other.number
    assert redis.get(job_key(slug)) is None


def test_page_of_arbitrary_garbage_bytes_fails_with_a_readable_reason(stack, tmp_path):
    """A page image overwritten with arbitrary (non-UTF-8) bytes fails with the engine's
    readable reason, not an internal error."""
    data_dir = Path(stack.app.config["DATA_DIR"])
    with stack.app.app_context():
        project = make_ready_project("faults-garbage", pdf_of(tmp_path / "p.pdf", [3]))
        (data_dir / project.pages[0].image_path).write_bytes(bytes(range(128, 256)) * 64)
        start(project)
        status = wait_for_job_end(project, 120)
    assert status["state"] == "failed", status
    reason = status["pages"][0].get("reason", "")
    assert "internal error" not in reason, reason
    assert "could not read the page image" in reason, reason


def test_blank_page_gives_empty_text_and_is_done(stack_app):
    """A blank scanned page is OCRed to empty text with state done: not an error."""
    project = make_ready_project("faults-blank", corpus("blank.pdf"))
    outcome = start(project)
    status = wait_for_job_end(project, 120)
    assert status["state"] == "succeeded", status
    page = db.session.scalars(select(Page).filter_by(project_id=project.id)).one()
    db.session.refresh(page)
    assert (page.ocr_state, page.ocr_error) == ("done", None)
    assert page.text.strip() == ""
    assert page.ocr_boxes == []
    assert revisions_by_job(page.id) == {outcome.job_id: 1}


# -- cancel and resume ---------------------------------------------------------------------


def test_cancel_keeps_done_pages_and_resume_runs_only_the_pages_not_run(stack_app):
    """Cancel deletes the key at once, keeps the done pages' text, writes nothing for the
    cancelled pages even after the worker drains; resume runs exactly those pages."""
    project = make_ready_project("faults-cancel", corpus("multipage.pdf"))
    redis = stack_app.extensions["redis"]
    first = start(project)

    def a_page_done():
        db.session.expire_all()
        return batch_ocr.job_status(project).done >= 1

    wait_for(a_page_done, 120, "the first page of the job to be done", interval=0.1)
    job = batch_ocr.cancel_batch_ocr(project)
    assert redis.get(job_key(project.slug)) is None
    assert job.state == JobState.CANCELLED

    def snapshot() -> dict[int, tuple[str, str, int, dict]]:
        db.session.expire_all()
        rows = db.session.execute(
            select(JobPage.page_id, JobPage.state).filter_by(job_id=first.job_id)
        ).all()
        result = {}
        for page_id, state in rows:
            page = db.session.get(Page, page_id)
            result[page_id] = (state, page.text, page.version, revisions_by_job(page_id))
        return result

    at_cancel = snapshot()
    done = {pid for pid, (state, *_) in at_cancel.items() if state == "done"}
    cancelled = {pid for pid, (state, *_) in at_cancel.items() if state == "cancelled"}
    assert done and cancelled, at_cancel
    for pid in done:
        assert at_cancel[pid][3] == {first.job_id: 1}
    for pid in cancelled:
        assert at_cancel[pid][1:] == ("", 0, {})

    # Pages already running when the job was cancelled may finish; nothing else may change.
    wait_for(
        lambda: b"r" not in (redis.get(pages_key(first.job_id)) or b""),
        120,
        "the pages running at cancel time to finish",
    )
    drained = snapshot()
    for pid in done | cancelled:
        assert drained[pid] == at_cancel[pid], pid
    for pid in set(at_cancel) - done - cancelled:
        assert drained[pid][0] in ("done", "failed"), drained[pid]
    db.session.refresh(job)
    assert job.state == JobState.CANCELLED

    resumed = start(project, selection="resume")
    assert resumed.started
    query = select(JobPage.page_id).filter_by(job_id=resumed.job_id)
    assert set(db.session.scalars(query)) == cancelled
    status = wait_for_job_end(project, 180)
    assert status["state"] == "succeeded", status
    for page in db.session.scalars(select(Page).filter_by(project_id=project.id)):
        expected_job = resumed.job_id if page.id in cancelled else first.job_id
        assert revisions_by_job(page.id) == {expected_job: 1}, page.number
        assert page.ocr_state == "done"


# -- two starts at once --------------------------------------------------------------------


def _start_in_own_context(app, project_id: int, barrier: threading.Barrier | None = None):
    with app.app_context():
        project = db.session.get(Project, project_id)
        if barrier is not None:
            barrier.wait(timeout=10)
        return start(project, selection="all")


def test_two_simultaneous_starts_make_one_job(stack, tmp_path):
    """Two starts at the same instant, 20 times over: one starts, both get its id, and there
    is one job row and one key naming it."""
    app = stack.app
    redis = app.extensions["redis"]
    with app.app_context():
        project = make_ready_project("faults-double", pdf_of(tmp_path / "p.pdf", [3]))
        project_id, slug = project.id, project.slug
    with ThreadPoolExecutor(2) as pool:
        for round_number in range(1, 21):
            barrier = threading.Barrier(2)
            futures = [
                pool.submit(_start_in_own_context, app, project_id, barrier) for _ in range(2)
            ]
            outcomes = [future.result(timeout=60) for future in futures]
            assert sorted(o.started for o in outcomes) == [False, True], (round_number, outcomes)
            assert outcomes[0].job_id == outcomes[1].job_id, round_number
            with app.app_context():
                assert job_count(project_id) == round_number
                assert JobRecord.from_json(redis.get(job_key(slug))).task_id == outcomes[0].job_id
                try:  # ends the job at once, so the next round starts afresh
                    batch_ocr.cancel_batch_ocr(db.session.get(Project, project_id))
                except BatchOcrError:
                    pass  # the one-page job had already ended by itself


def test_start_racing_a_slow_commit_of_another_start_makes_one_job(stack, tmp_path):
    """While one start has claimed the key but its job row is still waiting for the database
    (held by another writer), a second start returns that job instead of starting another."""
    app = stack.app
    redis = app.extensions["redis"]
    with app.app_context():
        project = make_ready_project("faults-claim-race", pdf_of(tmp_path / "p.pdf", [3]))
        project_id, slug = project.id, project.slug
        database = db.engine.url.database

    def claimed_id() -> str | None:
        raw = redis.get(job_key(slug))
        return JobRecord.from_json(raw).task_id if raw else None

    # Another writer (in production: the worker saving pages) holds SQLite's write lock.
    writer = sqlite3.connect(database, timeout=30, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(_start_in_own_context, app, project_id)
            wait_for(claimed_id, 10, "the first start to claim the key")
            first_claim = claimed_id()
            second = pool.submit(_start_in_own_context, app, project_id)
            wait_for(
                lambda: second.done() or claimed_id() != first_claim,
                10,
                "the second start to return or to claim the key",
            )
            writer.execute("ROLLBACK")
            outcomes = [first.result(timeout=60), second.result(timeout=60)]
    finally:
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        writer.close()
        with app.app_context():
            for job in db.session.scalars(select(Job).filter_by(project_id=project_id)):
                batch_ocr.end_job(job.id, state=JobState.CANCELLED)
    assert [o.started for o in outcomes] == [True, False], outcomes
    assert outcomes[1].job_id == outcomes[0].job_id
    with app.app_context():
        assert job_count(project_id) == 1


# -- records in Redis that are not what this code wrote ------------------------------------


def test_corrupt_or_orphan_key_is_cleared_and_the_start_form_shown(stack, tmp_path):
    """A key that is not JSON, or names a job that does not exist, is deleted by the batch OCR
    page, which then shows the start form."""
    redis = stack.app.extensions["redis"]
    with stack.app.app_context():
        slug = make_ready_project("faults-corrupt-key", corpus("trivial.pdf")).slug
    client = editor_client(stack.app)
    orphan = JobRecord(
        task_id=str(uuid.uuid4()),
        engine="tesseract",
        started_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        project_slug=slug,
        language="eng",
        total=1,
    )
    for value in ("{not json", orphan.to_json()):
        redis.set(job_key(slug), value, ex=600)
        response = client.get(f"/proofing/{slug}/batch-ocr")
        assert response.status_code == 200, value
        assert 'id="start-form"' in response.get_data(as_text=True), value
        assert redis.get(job_key(slug)) is None, value


# -- Redis down ----------------------------------------------------------------------------


QUEUE_DOWN_TITLE = "The task queue is unavailable"


def test_redis_down_gives_503_on_batch_ocr_only_and_a_start_works_once_it_is_back(
    own_stack, tmp_path
):
    """With Redis stopped, the batch OCR page and its start answer 503 with the readable
    message and start nothing, other pages still answer 200; once Redis is back on the same
    port, a start runs to the end."""
    stack = own_stack()
    stack.start_worker()
    with stack.app.app_context():
        project = make_ready_project("outage", pdf_of(tmp_path / "p.pdf", [3]))
        slug, project_id = project.slug, project.id
    client = editor_client(stack.app)
    form = {
        "csrf_token": csrf_token(client, "/proofing/create-project"),
        "engine": "tesseract",
        "pages": "all",
    }

    stack.redis_server.stop()
    try:
        for response in (
            client.get(f"/proofing/{slug}/batch-ocr"),
            client.post(f"/proofing/{slug}/batch-ocr", data=form),
        ):
            body = response.get_data(as_text=True)
            assert response.status_code == 503, body
            assert QUEUE_DOWN_TITLE in body and "Traceback" not in body
        for url in ("/proofing/", f"/proofing/{slug}/", f"/proofing/{slug}/1/"):
            assert client.get(url).status_code == 200, url
        with stack.app.app_context():
            assert job_count(project_id) == 0
    finally:
        stack.redis_server.start()

    response = client.post(f"/proofing/{slug}/batch-ocr", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    with stack.app.app_context():
        project = db.session.get(Project, project_id)
        status = wait_for_job_end(project, 120)
        assert status["state"] == "succeeded", status
        assert job_count(project_id) == 1


def test_start_with_redis_down_raises_queue_unavailable_and_records_nothing(own_stack, tmp_path):
    """start_batch_ocr with Redis stopped raises QueueUnavailable and leaves no job row."""
    stack = own_stack()
    with stack.app.app_context():
        # No worker here: split in this process.
        project = split_project("outage-service", pdf_of(tmp_path / "p.pdf", [3]))
        stack.redis_server.stop()
        with pytest.raises(QueueUnavailable):
            start(project)
        db.session.rollback()
        assert job_count(project.id) == 0


# -- a page over its time limit ----------------------------------------------------------


def write_slow_page(path: Path) -> None:
    """A page image that takes Tesseract well over 10 s: linn.pdf's 300 DPI scan, tiled 3 x 3
    (about 2 s of Tesseract each), written over the page the split stored."""
    pdf = pdfium.PdfDocument(str(corpus("linn.pdf")))
    try:
        scan = pdf[0].render(scale=300 / 72, grayscale=True).to_pil().convert("1")
    finally:
        pdf.close()
    tiled = Image.new("1", (scan.width * 3, scan.height * 3), 1)
    for row in range(3):
        for column in range(3):
            tiled.paste(scan, (column * scan.width, row * scan.height))
    tmp = path.with_suffix(".new.png")
    tiled.save(tmp, dpi=(300, 300))
    os.replace(tmp, path)


def test_page_over_the_time_limit_fails_alone_and_the_worker_goes_on(own_stack, tmp_path):
    """A page Tesseract cannot finish within OCR_PAGE_TIME_LIMIT fails with a reason naming
    the limit; the other pages are done, the job ends, and the worker runs the next job."""
    stack = own_stack(OCR_PAGE_TIME_LIMIT="10", OCR_STALL_TIMEOUT="30")
    stack.start_worker()
    redis = stack.app.extensions["redis"]
    data_dir = Path(stack.app.config["DATA_DIR"])
    with stack.app.app_context():
        project = make_ready_project("slow-page", pdf_of(tmp_path / "p.pdf", [2, 3, 2]))
        slug, slow = project.slug, data_dir / project.pages[1].image_path
        good = slow.read_bytes()
        write_slow_page(slow)
        start(project)
        status = wait_for_job_end(project, 90)
        assert status["state"] == "partially_failed", status
        assert [p["state"] for p in status["pages"]] == ["done", "failed", "done"], status
        # Tesseract's own deadline: Celery's soft limit is proven apart, in
        # tests/integration/test_page_time_limit.py, and a helper that ignores the deadline
        # in tests/unit/engines/test_loaded_tesseract.py.
        assert status["pages"][1]["reason"] == "Tesseract took longer than 10 s on this page"
        assert redis.get(job_key(slug)) is None

        slow.write_bytes(good)
        retry = start(project, selection="failed")
        assert retry.started
        status = wait_for_job_end(project, 60)
        assert status["state"] == "succeeded", status
        assert (status["total"], status["done"]) == (1, 1)
    assert stack.workers[0].process.poll() is None, "the worker exited"


# -- a job whose worker is gone ------------------------------------------------------------


def test_job_without_worker_is_interrupted_after_the_stall_timeout_then_resumed(
    own_stack, tmp_path
):
    """A job nobody runs is left alone until OCR_STALL_TIMEOUT has passed, then the reaper
    marks it interrupted and clears its key; with a worker back, resume completes it."""
    # The smallest limits the settings allow: a page limit of 5 s, a stall timeout above it.
    stack = own_stack(OCR_PAGE_TIME_LIMIT="5", OCR_STALL_TIMEOUT="6")
    redis = stack.app.extensions["redis"]
    with stack.app.app_context():
        # No worker yet: split in this process.
        project = split_project("no-worker", pdf_of(tmp_path / "p.pdf", [2, 3]))

        before = time.time()
        lost = start(project)
        assert batch_ocr.watch_jobs() == 0
        wait_for(batch_ocr.watch_jobs, 60, "the watchdog to end the stalled job", 0.5)
        assert time.time() - before >= 6, "interrupted before OCR_STALL_TIMEOUT"
        db.session.expire_all()
        job = db.session.get(Job, lost.job_id)
        assert job.state == JobState.INTERRUPTED
        assert job.finished_at is not None
        assert redis.get(job_key(project.slug)) is None

        stack.start_worker()
        resumed = start(project, selection="resume")
        assert resumed.started
        status = wait_for_job_end(project, 120)
        assert status["state"] == "succeeded", status
        assert status["done"] == 2
        for page in project.pages:
            assert revisions_by_job(page.id) == {resumed.job_id: 1}, page.number
        assert redis.get(job_key(project.slug)) is None
