"""Jobs as a multi-user system, on real processes: the README's plain worker runs a whole job
from the upload, jobs of two projects share the workers, and a queue nobody takes is named."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, JobPage, Page, Project, Revision
from app.services import batch_ocr
from tests.support import (
    RedisServer,
    Stack,
    make_ready_project,
    multipage_pdf,
    wait_for,
    wait_for_job_end,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_stack(tmp_path):
    """A stack of its own (redis-server, database); workers only if the test starts them."""
    server = RedisServer(tmp_path / "redis").start()
    stack = Stack(tmp_path, server)
    yield stack
    stack.stop()
    server.stop()


def revisions_by_page(project_id: int, job_id: str) -> dict[int, int]:
    return dict(
        db.session.execute(
            select(Page.number, func.count(Revision.id))
            .outerjoin(Revision, (Revision.page_id == Page.id) & (Revision.job_id == job_id))
            .filter(Page.project_id == project_id)
            .group_by(Page.number)
        ).all()
    )


def test_an_upload_with_ocr_is_split_and_recognised_page_by_page(stack_app, tmp_path):
    """With OCR asked for at upload, the job and its key exist from the moment the upload is
    accepted, its pages are first 'preparing', each page is OCR'd once, and the key is gone at
    the end. The worker is the README's `celery -A worker worker`, with no -Q."""
    source = multipage_pdf(tmp_path / "book.pdf", [2, 3, 2, 3, 2, 3])
    with source.open("rb") as fh:
        project = batch_ocr.create_project_with_ocr(
            engine="tesseract",
            ocr_language=None,
            slug="upload-with-ocr",
            title="Upload with OCR",
            language="eng",
            source=fh,
            filename=source.name,
            created_by=None,
        )
    redis = stack_app.extensions["redis"]
    assert redis.get(job_key("upload-with-ocr")) is not None
    job = db.session.scalars(select(Job).filter_by(project_id=project.id)).one()
    assert (job.selection, job.total) == ("upload", 6)

    status = wait_for_job_end(project, 180)

    assert status["state"] == "succeeded", status
    assert (status["done"], status["total"], status["preparing"]) == (6, 6, 0)
    assert revisions_by_page(project.id, job.id) == {n: 1 for n in range(1, 7)}
    assert redis.get(job_key("upload-with-ocr")) is None
    db.session.refresh(project)
    assert project.status == "ready"


def test_a_small_job_runs_between_the_pages_of_a_long_one(stack_app, tmp_path):
    """A 2-page job started while a 90-page job of another project runs ends after a few of
    the long job's pages, not after all of them: the long job keeps only a window of its pages
    in the queue (twice the worker processes). (With one queue of every page it waited behind
    all 90, 65 s; docs/performance.md has the figures.)"""
    long_book = make_ready_project("long-book", multipage_pdf(tmp_path / "long.pdf", [2, 3] * 45))
    short_book = make_ready_project("short-book", multipage_pdf(tmp_path / "short.pdf", [3, 2]))
    long_job = batch_ocr.start_batch_ocr(
        long_book, engine="tesseract", language=None, selection="all", user=None
    )
    wait_for(lambda: batch_ocr.job_status(long_book).done >= 4, 120, "the long job under way")
    short_job = batch_ocr.start_batch_ocr(
        short_book, engine="tesseract", language=None, selection="all", user=None
    )
    short = wait_for_job_end(short_book, 120)
    db.session.expire_all()
    # From the records, not from polls: the short job's start, its last page's end, and the
    # long job's pages that ended in between.
    short_started = db.session.get(Job, short_job.job_id).started_at
    short_ended = db.session.scalar(
        select(func.max(JobPage.finished_at)).filter_by(job_id=short_job.job_id)
    )
    overtaking = db.session.scalar(
        select(func.count())
        .select_from(JobPage)
        .filter(
            JobPage.job_id == long_job.job_id,
            JobPage.finished_at > short_started,
            JobPage.finished_at <= short_ended,
        )
    )
    after = batch_ocr.job_status(long_book).done

    assert short["state"] == "succeeded", short
    # The long job's window (4 pages, 2 processes) and the pages run beside the short ones.
    assert overtaking <= 12, f"the small job waited behind {overtaking} long pages"
    assert after < 90, "the long job ended first: the test proved nothing"
    seconds = (short_ended - short_started).total_seconds()
    print(f"\nsmall job behind a 90-page job: {seconds:.1f} s, {overtaking} long pages")
    assert revisions_by_page(short_book.id, short_job.job_id) == {1: 1, 2: 1}
    batch_ocr.cancel_batch_ocr(long_book)
    assert long_job.started


def test_pages_waiting_for_a_queue_nobody_takes_carry_a_warning(fresh_stack, tmp_path):
    """A worker that takes only the interactive and default queues: the split runs, but the
    job's pages wait. Within 10 s the status says why, /healthz names the queue with its
    consumers and waiting messages, and a worker taking every queue then runs the job."""
    fresh_stack.start_worker("split-only", queues="interactive,celery")
    app = fresh_stack.app
    with app.app_context():
        project = make_ready_project("nobody-ocrs", multipage_pdf(tmp_path / "b.pdf", [2, 3, 2]))
        batch_ocr.start_batch_ocr(
            project, engine="tesseract", language=None, selection="all", user=None
        )

        def warned():
            db.session.expire_all()
            return batch_ocr.job_status(project).warning

        warning = wait_for(warned, 10, "the status to warn that nobody takes the 'ocr' queue")
        assert "'ocr' queue" in warning
        health = app.test_client().get("/healthz")
        assert health.status_code == 503
        checks = health.get_json()["checks"]
        assert checks["workers"]["count"] == 1
        assert checks["queue:ocr"] == {"ok": False, "consumers": 0, "waiting": 2}
        assert checks["queue:interactive"]["consumers"] == 1

        fresh_stack.start_worker("everything")
        status = wait_for_job_end(project, 120)
        assert status["state"] == "succeeded", status
        assert status["warning"] is None


def test_healthz_with_a_real_worker_and_after_it_stopped(fresh_stack):
    """/healthz counts a real worker and its queues; once it has stopped, it says none."""
    worker = fresh_stack.start_worker()
    client = fresh_stack.app.test_client()

    def healthy():
        response = client.get("/healthz")
        return response.get_json() if response.status_code == 200 else None

    checks = wait_for(healthy, 15, "the worker to announce itself")["checks"]
    assert checks["workers"]["names"] == [worker.name]
    for queue_name in ("interactive", "celery", "ocr"):
        assert checks[f"queue:{queue_name}"]["consumers"] == 1

    worker.stop()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["workers"] == {"ok": False, "count": 0, "names": []}


def test_a_file_that_cannot_be_split_leaves_no_job_and_no_key(stack_app, tmp_path):
    """An upload with OCR asked for that cannot be opened is refused as without OCR: the same
    message, and no project, no job, no key."""
    bad = tmp_path / "invalid.pdf"
    bad.write_bytes(b"%PDF-1.7\n%%EOF\n")
    with bad.open("rb") as fh, pytest.raises(ValueError, match="damaged") as refused:
        batch_ocr.create_project_with_ocr(
            engine="tesseract",
            ocr_language=None,
            slug="cannot-split",
            title="t",
            language="eng",
            source=fh,
            filename=bad.name,
            created_by=None,
        )
    assert "cannot be opened" in str(refused.value)
    assert db.session.scalar(select(Project).filter_by(slug="cannot-split")) is None
    assert stack_app.extensions["redis"].get(job_key("cannot-split")) is None
