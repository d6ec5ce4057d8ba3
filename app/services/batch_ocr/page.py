"""OCR of one page of a batch job: the work `run_item` (app/services/jobs/items.py) calls.

The page's revision, text, word boxes and outcome are written in one transaction, and only if
no person saved the page since the job started, so OCR never overwrites a proofreader's work.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import Exists, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.config import page_task_time_limit
from app.engines import OcrError, TransientOcrError, get_engine
from app.extensions import db
from app.models import ItemState, Job, JobKind, JobPage, JobState, Page, Revision, utcnow
from app.services.accounts import bot_user
from app.services.jobs.items import NOT_RUN, PageOutcome, defer_item, fail_item, run_item

log = logging.getLogger(__name__)


def run_page(
    job_id: str, position: int, *, final_attempt: bool = True, worker: str = ""
) -> PageOutcome:
    """OCR one page of a job and record the outcome. Idempotent.

    Raises TransientOcrError when the engine may succeed later and this is not the final
    attempt (the task retries with backoff); any other engine failure fails the page.
    """
    work = functools.partial(_ocr_work, final_attempt=final_attempt)
    return run_item(job_id, position, work, worker=worker or "-")


def fail_page(job_id: str, position: int, reason: str, *, worker: str | None = None) -> None:
    """Fail a page whose task broke off (time limit, unexpected error): the job goes on."""
    fail_item(job_id, position, reason, worker=worker)
    job_page = db.session.get(JobPage, (job_id, position))
    if job_page is not None and job_page.page is not None and job_page.state == ItemState.FAILED:
        _mark_page_failed(job_page.page, job_page.reason or reason)
        db.session.commit()


def fail_page_over_time_limit(job_id: str, position: int, *, worker: str | None = None) -> None:
    limit = current_app.config["OCR_PAGE_TIME_LIMIT"]
    fail_page(
        job_id, position, f"OCR took longer than the {limit} s page time limit", worker=worker
    )


def retry_page_later(job_id: str, position: int, seconds: float) -> None:
    """The page's task retries in `seconds` (a transient engine error)."""
    defer_item(job_id, position, seconds)


def _ocr_work(job: Job, job_page: JobPage, *, final_attempt: bool) -> PageOutcome:
    page = job_page.page
    if page is None:
        return PageOutcome(NOT_RUN, "the page is not ready yet")
    if _edited_since(page, job):
        return PageOutcome(ItemState.SKIPPED, "edited by a person after the job started")
    if (done := _done_by_another_job(job, job_page)) is not None:
        return done
    outcome = _recognize_and_save(job, job_page, page, final_attempt)
    if outcome.outcome == ItemState.FAILED:
        _mark_page_failed(page, outcome.reason)
    return outcome


def _mark_page_failed(page: Page, reason: str) -> None:
    page.ocr_state = ItemState.FAILED
    page.ocr_error = reason[:500]


def _edited_since(page: Page, job: Job) -> bool:
    return page.proofread_at is not None and page.proofread_at >= job.started_at


def _recognised_by_another_job_since(page_id: int, job: Job) -> Exists:
    """Whether another OCR job with the same engine and language has just written this page:

    - after `job` started (so a straggler finishing late leaves the page to the newer job), or
    - at all, if that job was interrupted or cancelled so recently that its tasks could still
      run when `job` started (within a page task's hard time limit). Then the page is the work
      of a straggling task of the job `job` resumes, whose revision can be stamped before
      `job` started, or before its own job was interrupted, and still be committed after
      `job` chose its pages: times alone cannot tell. Its text is what `job` would write.
    """
    other = aliased(Job)
    task_limit = timedelta(seconds=page_task_time_limit(current_app.config))
    recently_ended = and_(
        other.state.in_((JobState.INTERRUPTED, JobState.CANCELLED)),
        other.finished_at >= job.started_at - task_limit,
    )
    return (
        select(Revision.id)
        .join(other, Revision.job_id == other.id)
        .where(
            Revision.page_id == page_id,
            other.id != job.id,
            other.kind == JobKind.OCR,
            other.engine == job.engine,
            other.language == job.language,
            or_(Revision.created_at >= job.started_at, recently_ended),
        )
        .exists()
    )


def _done_by_another_job(job: Job, job_page: JobPage) -> PageOutcome | None:
    """The page counted done, with no OCR of this job's, if a straggling task of an
    interrupted job has just written it (the same engine, so the same text); else None."""
    if not db.session.scalar(select(_recognised_by_another_job_since(job_page.page_id, job))):
        return None
    job_page.state = ItemState.DONE
    job_page.finished_at = utcnow()
    db.session.commit()
    return PageOutcome(ItemState.DONE)


def _recognize_and_save(
    job: Job, job_page: JobPage, page: Page, final_attempt: bool
) -> PageOutcome:
    engine = get_engine(job.engine)
    if engine is None:
        return PageOutcome(ItemState.FAILED, f"unknown engine {job.engine!r}")
    config = current_app.config
    image = Path(config["DATA_DIR"]) / page.image_path
    if not image.is_file():
        return PageOutcome(ItemState.FAILED, "the page image is missing from the data directory")
    started = time.monotonic()
    try:
        result = engine.recognize(
            image, job.language, config, timeout=config["OCR_PAGE_TIME_LIMIT"]
        )
    except TransientOcrError as exc:
        if not final_attempt:
            raise
        return PageOutcome(ItemState.FAILED, f"{exc} (gave up after retries)")
    except OcrError as exc:
        return PageOutcome(ItemState.FAILED, str(exc))
    log.info("job %s page %d recognised in %.2f s", job.id, page.number, time.monotonic() - started)
    return save_revision(job, job_page, page, result.text, result.boxes)


def save_revision(job: Job, job_page: JobPage, page: Page, text: str, boxes: list) -> PageOutcome:
    """Write the bot's revision, the page's text and boxes, and the page outcome at once."""
    bot = bot_user()
    now = utcnow()
    # The condition re-checks, inside the write, that nobody saved the page meanwhile, and that
    # no straggler of an interrupted job wrote the same OCR while this page was recognised.
    written = db.session.execute(
        update(Page)
        .where(
            Page.id == page.id,
            (Page.proofread_at.is_(None)) | (Page.proofread_at < job.started_at),
            ~_recognised_by_another_job_since(page.id, job),
        )
        .values(
            version=Page.version + 1,
            text=text,
            ocr_boxes=boxes,
            ocr_state=ItemState.DONE,
            ocr_error=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if written != 1:
        db.session.rollback()
        done = _done_by_another_job(job, job_page)
        return done or PageOutcome(ItemState.SKIPPED, "edited by a person after the job started")
    db.session.add(
        Revision(
            page_id=page.id,
            author_id=bot.id,
            text=text,
            summary=f"OCR ({job.engine}, {job.language})",
            created_at=now,
            job_id=job.id,
            status=page.status,
        )
    )
    job_page.state = ItemState.DONE
    job_page.finished_at = now
    try:
        db.session.commit()
    except IntegrityError:
        # This job already wrote this page's revision (a redelivered task): keep that one.
        db.session.rollback()
    return PageOutcome(ItemState.DONE)
