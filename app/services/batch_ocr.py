"""Batch OCR of a project: start, run one page, end, cancel, and notice jobs that were lost.

The lifecycle (docs/batch-ocr-task-tracking.md):

1. `start_batch_ocr` claims ``ocr_task:<slug>`` with SET NX (two clicks give one job), records
   the job in the database and enqueues one `dispatch` task; the request answers at once
   however many pages the book has.
2. `dispatch_job` (in the worker) sends the Celery group: one `ocr_page` task per page.
3. `run_page` OCRs one page, writes its revision and word boxes in one transaction, then
   records the outcome in Redis. Exactly one page learns it was the last, and ends the job:
   the database record is completed and the Redis record deleted by name.
4. `cancel_batch_ocr` marks the queued pages cancelled and deletes the record at once.
5. `reap_stalled_jobs` (beat, and every status read) marks a job whose tasks were lost as
   interrupted; `start_batch_ocr(selection="resume")` re-runs only the pages it did not finish.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import group
from flask import current_app
from sqlalchemy import Exists, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app import queue, task_names
from app.config import page_task_time_limit
from app.engines import OcrError, TransientOcrError, get_engine
from app.extensions import db
from app.models import (
    Job,
    JobPage,
    JobState,
    Page,
    Project,
    ProjectStatus,
    Revision,
    User,
    utcnow,
)
from app.ocr_tracking import JobProgress, JobRecord, OcrJobTracker
from app.services.accounts import bot_user
from app.services.projects import check_language

log = logging.getLogger(__name__)

#: Which pages a job covers, as offered on the form and the CLI.
SELECTIONS = {
    "unedited": "Pages never edited by a person",
    "all": "All pages (pages edited by a person are still kept)",
    "failed": "Pages whose last OCR failed",
}
RESUME = "resume"


class BatchOcrError(ValueError):
    """A user-facing reason a batch OCR action cannot be done."""


@dataclass(frozen=True)
class StartOutcome:
    job_id: str
    #: False when a job was already running: the caller shows that job's progress.
    started: bool


def tracker() -> OcrJobTracker:
    return current_app.extensions["ocr_tracker"]


def _record_of(job: Job) -> JobRecord:
    return JobRecord(
        task_id=job.id,
        engine=job.engine,
        started_at=_iso(job.started_at),
        project_slug=job.project.slug,
        language=job.language,
        total=job.total,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.replace(tzinfo=UTC).isoformat() if moment else None


# -- starting ----------------------------------------------------------------------------


def check_engine(engine_name: str, language: str) -> None:
    engine = get_engine(engine_name)
    if engine is None:
        raise BatchOcrError(f"Unknown OCR engine {engine_name!r}.")
    reason = engine.unavailable_reason(current_app.config)
    if reason:
        raise BatchOcrError(f"The {engine.label} engine is unavailable: {reason}.")
    try:
        check_language(language)
    except ValueError as exc:
        raise BatchOcrError(str(exc)) from None
    installed = engine.languages(current_app.config)
    if installed is not None:
        missing = [code for code in language.split("+") if code not in installed]
        if missing:
            raise BatchOcrError(
                f"No {engine.label} language data is installed for {', '.join(missing)}; "
                f"installed: {', '.join(sorted(installed)) or 'none'}."
            )


def _selected_pages(project: Project, selection: str) -> list[int]:
    query = select(Page.id).filter_by(project_id=project.id).order_by(Page.number)
    if selection == "unedited":
        query = query.where(Page.proofread_at.is_(None))
    elif selection == "failed":
        query = query.where(Page.ocr_state == "failed")
    elif selection == RESUME:
        last = _latest_job(project)
        if last is None or last.state not in (JobState.INTERRUPTED, JobState.CANCELLED):
            raise BatchOcrError("There is no interrupted or cancelled job to resume.")
        query = (
            select(JobPage.page_id)
            .filter_by(job_id=last.id)
            .where(JobPage.state.in_(("queued", "cancelled")))
            .order_by(JobPage.position)
        )
    elif selection != "all":
        raise BatchOcrError(f"Unknown page selection {selection!r}.")
    return list(db.session.scalars(query))


@queue.needs_redis
def start_batch_ocr(
    project: Project,
    *,
    engine: str,
    language: str | None,
    selection: str,
    user: User | None,
) -> StartOutcome:
    """Start OCR over the selected pages, or return the job already running."""
    running = current_job(project)
    if running is not None:
        return StartOutcome(job_id=running.task_id, started=False)
    if project.status != ProjectStatus.READY:
        raise BatchOcrError("The project's pages are not ready yet; wait for the split to end.")
    language = (language or project.language).strip()
    check_engine(engine, language)
    # Taken before the pages are chosen: whatever is written after the choice is "since".
    now = utcnow()
    resumed = _latest_job(project) if selection == RESUME else None
    page_ids = _selected_pages(project, selection)
    if not page_ids:
        raise BatchOcrError("No pages match that selection: there is nothing to OCR.")
    if resumed is not None:
        engine, language = resumed.engine, resumed.language

    record = JobRecord(
        task_id=str(uuid.uuid4()),
        engine=engine,
        started_at=_iso(now),
        project_slug=project.slug,
        language=language,
        total=len(page_ids),
    )
    existing = tracker().claim(record)
    if existing is not None:
        return StartOutcome(job_id=existing.task_id, started=False)
    try:
        bot_user()  # exists before any page task needs it
        db.session.add(
            Job(
                id=record.task_id,
                project_id=project.id,
                engine=engine,
                language=language,
                selection=selection,
                state=JobState.QUEUED,
                started_by_id=user.id if user else None,
                started_at=now,
                total=len(page_ids),
            )
        )
        db.session.flush()
        db.session.execute(
            insert(JobPage),
            [
                {"job_id": record.task_id, "position": position, "page_id": page_id}
                for position, page_id in enumerate(page_ids)
            ],
        )
        db.session.commit()
        queue.enqueue(task_names.DISPATCH_OCR_JOB, job_id=record.task_id)
    except BaseException:
        # Nothing half-made: no record in Redis, no job in the database.
        db.session.rollback()
        _forget_job(record)
        raise
    log.info(
        "batch OCR %s started on %s: %d pages, %s/%s",
        record.task_id,
        project.slug,
        len(page_ids),
        engine,
        language,
    )
    return StartOutcome(job_id=record.task_id, started=True)


def _forget_job(record: JobRecord) -> None:
    try:
        tracker().end(record)
    except queue.REDIS_DOWN:
        log.warning("could not delete the record of %s after a failed start", record.task_id)
    job = db.session.get(Job, record.task_id)
    if job is not None:
        db.session.delete(job)
        db.session.commit()


def dispatch_job(job_id: str) -> int:
    """Send the job's Celery group: one task per page. Returns how many were sent."""
    job = db.session.get(Job, job_id)
    if job is None or JobState(job.state).is_terminal:
        return 0
    record = tracker().current(job.project.slug)
    if record is None or record.task_id != job_id:
        return 0
    if not tracker().mark_dispatched(record):
        return 0  # a redelivered dispatch: the group was sent already
    celery = queue.celery()
    signatures = [
        celery.signature(
            task_names.OCR_PAGE,
            kwargs={"job_id": job_id, "position": position, "page_id": page_id},
            queue=task_names.OCR_QUEUE,
        )
        for position, page_id in db.session.execute(
            select(JobPage.position, JobPage.page_id)
            .filter_by(job_id=job_id, state="queued")
            .order_by(JobPage.position)
        )
    ]
    # The group's id is the job's task_id, so Flower and `celery inspect` show the same id.
    group(signatures).apply_async(task_id=job_id)
    return len(signatures)


# -- one page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageOutcome:
    outcome: str  # "done", "failed", "skipped", or "not run"
    reason: str = ""


def run_page(job_id: str, position: int, *, final_attempt: bool = True) -> PageOutcome:
    """OCR one page of a job and record the outcome. Idempotent.

    Raises TransientOcrError when the engine may succeed later and this is not the final
    attempt (the task retries with backoff); any other engine failure fails the page.
    """
    job = db.session.get(Job, job_id)
    job_page = db.session.get(JobPage, (job_id, position))
    if job is None or job_page is None:
        return PageOutcome("not run", "the job no longer exists")
    record = tracker().current(job.project.slug)
    if record is None or record.task_id != job_id:
        return PageOutcome("not run", "the job has ended")
    if job_page.state in ("done", "failed", "skipped"):
        # Finished in the database but the Redis update was lost (a worker killed between
        # the two): record it now; finish_page counts a page at most once.
        _record_outcome(record, job_page.position, job_page.state, job_page.reason or "")
        return PageOutcome(job_page.state, job_page.reason or "")
    if not tracker().mark_running(record, position):
        return PageOutcome("not run", "the page was cancelled or already finished")
    if job.state == JobState.QUEUED:
        db.session.execute(
            update(Job).filter_by(id=job_id, state=JobState.QUEUED).values(state=JobState.RUNNING)
        )
        db.session.commit()

    page = job_page.page
    if _edited_since(page, job):
        outcome = PageOutcome("skipped", "edited by a person after the job started")
    elif (done := _done_by_another_job(job, job_page)) is not None:
        outcome = done
    else:
        outcome = _recognize_and_save(job, job_page, page, final_attempt)
    if outcome.outcome != "done":
        _save_page_outcome(job, job_page, outcome)
    _record_outcome(record, position, outcome.outcome, outcome.reason)
    return outcome


def fail_page(job_id: str, position: int, reason: str) -> None:
    """Fail a page whose task broke off (time limit, unexpected error): the job goes on."""
    db.session.rollback()
    job = db.session.get(Job, job_id)
    job_page = db.session.get(JobPage, (job_id, position))
    if job is None or job_page is None or job_page.state != "queued":
        return
    outcome = PageOutcome("failed", reason)
    _save_page_outcome(job, job_page, outcome)
    _record_outcome(_record_of(job), position, outcome.outcome, outcome.reason)


def fail_page_over_time_limit(job_id: str, position: int) -> None:
    limit = current_app.config["OCR_PAGE_TIME_LIMIT"]
    fail_page(job_id, position, f"OCR took longer than the {limit} s page time limit")


def _edited_since(page: Page, job: Job) -> bool:
    return page.proofread_at is not None and page.proofread_at >= job.started_at


def _recognised_by_another_job_since(page_id: int, job: Job) -> Exists:
    """Whether another job with the same engine and language has just written this page:

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
    outcome = PageOutcome("done")
    _save_page_outcome(job, job_page, outcome)
    return outcome


def _recognize_and_save(
    job: Job, job_page: JobPage, page: Page, final_attempt: bool
) -> PageOutcome:
    engine = get_engine(job.engine)
    if engine is None:
        return PageOutcome("failed", f"unknown engine {job.engine!r}")
    config = current_app.config
    image = Path(config["DATA_DIR"]) / page.image_path
    if not image.is_file():
        return PageOutcome("failed", "the page image is missing from the data directory")
    started = time.monotonic()
    try:
        result = engine.recognize(
            image, job.language, config, timeout=config["OCR_PAGE_TIME_LIMIT"]
        )
    except TransientOcrError as exc:
        if not final_attempt:
            raise
        return PageOutcome("failed", f"{exc} (gave up after retries)")
    except OcrError as exc:
        return PageOutcome("failed", str(exc))
    log.info("job %s page %d recognised in %.2f s", job.id, page.number, time.monotonic() - started)
    return _save_revision(job, job_page, page, result.text, result.boxes)


def _save_revision(job: Job, job_page: JobPage, page: Page, text: str, boxes: list) -> PageOutcome:
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
            ocr_state="done",
            ocr_error=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if written != 1:
        db.session.rollback()
        done = _done_by_another_job(job, job_page)
        return done or PageOutcome("skipped", "edited by a person after the job started")
    db.session.add(
        Revision(
            page_id=page.id,
            author_id=bot.id,
            text=text,
            summary=f"OCR ({job.engine}, {job.language})",
            created_at=now,
            job_id=job.id,
        )
    )
    job_page.state = "done"
    job_page.finished_at = now
    try:
        db.session.commit()
    except IntegrityError:
        # This job already wrote this page's revision (a redelivered task): keep that one.
        db.session.rollback()
    return PageOutcome("done")


#: Reasons are for people: an engine echoing a whole file is cut to this many characters.
MAX_REASON = 500


def _save_page_outcome(job: Job, job_page: JobPage, outcome: PageOutcome) -> None:
    reason = outcome.reason[:MAX_REASON]
    job_page.state = outcome.outcome
    job_page.reason = reason
    job_page.finished_at = utcnow()
    if outcome.outcome == "failed":
        job_page.page.ocr_state = "failed"
        job_page.page.ocr_error = reason
    db.session.commit()


def _record_outcome(record: JobRecord, position: int, outcome: str, reason: str) -> None:
    finish = tracker().finish_page(record, position, outcome, reason)
    if finish.last:
        end_job(record.task_id)


# -- ending ------------------------------------------------------------------------------


def end_job(job_id: str, state: JobState | None = None) -> Job | None:
    """Complete the job's database record, then delete its Redis record by name.

    Safe to call more than once: a job already in a terminal state keeps it.
    """
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    counts = dict(
        db.session.execute(
            select(JobPage.state, func.count()).filter_by(job_id=job_id).group_by(JobPage.state)
        ).all()
    )
    job.done = counts.get("done", 0)
    job.failed = counts.get("failed", 0)
    job.skipped = counts.get("skipped", 0)
    if not JobState(job.state).is_terminal:
        if state is not None:
            job.state = state
        elif job.failed and not job.done:
            job.state = JobState.FAILED
        elif job.failed:
            job.state = JobState.PARTIALLY_FAILED
        else:
            job.state = JobState.SUCCEEDED
        job.finished_at = utcnow()
    db.session.commit()
    tracker().end(_record_of(job))
    log.info(
        "batch OCR %s ended: %s (%d done, %d failed, %d skipped)",
        job.id,
        job.state,
        job.done,
        job.failed,
        job.skipped,
    )
    return job


@queue.needs_redis
def cancel_batch_ocr(project: Project) -> Job:
    """Stop the pages not yet started; pages already done keep their text."""
    record = tracker().current(project.slug)
    job = db.session.get(Job, record.task_id) if record else None
    if record is None or job is None or JobState(job.state).is_terminal:
        raise BatchOcrError("No batch OCR job is running for this project.")
    # The database says "cancelled" first: a poll racing this call then sees a job that has
    # ended, never a live job without its record (which it would mark interrupted).
    job.state = JobState.CANCELLED
    job.finished_at = utcnow()
    db.session.commit()
    tracker().cancel(record)
    states = tracker().progress_of(record).page_states
    cancelled = [i for i, state in enumerate(states) if state == "cancelled"]
    if cancelled:
        db.session.execute(
            update(JobPage)
            .where(
                JobPage.job_id == job.id,
                JobPage.position.in_(cancelled),
                JobPage.state == "queued",
            )
            .values(state="cancelled", finished_at=utcnow())
        )
        db.session.commit()
    log.info("batch OCR %s cancelled: %d pages not run", job.id, len(cancelled))
    return end_job(job.id) or job


def interrupt_job(job: Job, reason: str) -> None:
    log.warning("batch OCR %s interrupted: %s", job.id, reason)
    end_job(job.id, state=JobState.INTERRUPTED)


def check_running_job(job: Job, progress: JobProgress | None) -> bool:
    """Mark the job interrupted if its tasks were lost. True if the job is still live."""
    if progress is None:
        interrupt_job(job, "its record disappeared from Redis (restarted without persistence?)")
        return False
    if progress.finished >= job.total:
        end_job(job.id)  # the page that finished last died before ending the job
        return False
    stall = current_app.config["OCR_STALL_TIMEOUT"]
    if progress.last_progress is not None and time.time() - progress.last_progress > stall:
        interrupt_job(job, f"no page finished or started for {stall} s (workers lost?)")
        return False
    return True


def reap_stalled_jobs() -> int:
    """Check every job the database says is live; returns how many were ended."""
    ended = 0
    live = db.session.scalars(
        select(Job).where(Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
    ).all()
    for job in live:
        record = tracker().current(job.project.slug)
        progress = tracker().progress_of(record) if record and record.task_id == job.id else None
        if not check_running_job(job, progress):
            ended += 1
    return ended


# -- reading -----------------------------------------------------------------------------


def current_job(project: Project) -> JobRecord | None:
    """The project's live job, after clearing a record that names no live job."""
    record = tracker().current(project.slug)
    if record is None:
        return None
    job = db.session.get(Job, record.task_id)
    if job is None and _age_seconds(record) < START_GRACE_SECONDS:
        return record  # claimed by a start whose database row is not committed yet
    if job is None or JobState(job.state).is_terminal:
        log.warning("clearing %s: it names job %s, which is not live", project.slug, record.task_id)
        tracker().end(record)
        return None
    return record


#: How long a record may name a job not yet in the database: a start claims the record, then
#: commits the job, and that commit may wait on SQLite's write lock (busy timeout 30 s).
START_GRACE_SECONDS = 60


def _age_seconds(record: JobRecord) -> float:
    try:
        started = datetime.fromisoformat(record.started_at)
    except ValueError:
        return float("inf")
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


def latest_job_summary(project: Project) -> dict[str, Any] | None:
    """The last job, for the project page: state, counts and the failed pages' reasons."""
    job = _latest_job(project)
    if job is None:
        return None
    failures = db.session.execute(
        select(Page.number, JobPage.reason)
        .join(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == job.id, JobPage.state == "failed")
        .order_by(JobPage.position)
        .limit(20)
    ).all()
    return {"job": job, "failures": failures}


def _latest_job(project: Project) -> Job | None:
    return db.session.scalar(
        select(Job).filter_by(project_id=project.id).order_by(Job.started_at.desc()).limit(1)
    )


@lru_cache(maxsize=256)
def _page_numbers(job_id: str) -> tuple[int, ...]:
    """Page number of each position of a job; fixed for the job's life, so cached."""
    return tuple(
        db.session.scalars(
            select(Page.number)
            .join(JobPage, JobPage.page_id == Page.id)
            .filter(JobPage.job_id == job_id)
            .order_by(JobPage.position)
        )
    )


@queue.needs_redis
def job_status(project: Project) -> dict[str, Any]:
    """What the progress page and `GET .../batch-ocr/status` show.

    While a job runs this reads Redis only (two round trips, whatever the page count);
    once it has ended, the database record.
    """
    record = current_job(project)
    if record is not None:
        progress = tracker().progress_of(record)
        job = db.session.get(Job, record.task_id)
        if job is None or check_running_job(job, progress):  # None: being started right now
            return _live_status(record, progress)
    job = _latest_job(project)
    if job is None:
        return {"state": "none", "total": 0, "pages": []}
    if not JobState(job.state).is_terminal:
        # Live in the database but without its Redis record: the record was lost.
        check_running_job(job, None)
    return _ended_status(job)


#: The per-page part of each running job's last status, in this process: a job's pages change
#: state a few times a second at most while many users poll it, and building one entry per
#: page was most of the cost of a 2000-page poll. Keyed by job; an entry is reused only while
#: the page states and reasons read from Redis are byte for byte the same.
_LIVE_PAGES: OrderedDict[str, tuple[tuple, dict[str, int], list[dict[str, Any]]]] = OrderedDict()
_LIVE_PAGES_JOBS = 64
_LIVE_PAGES_LOCK = threading.Lock()


def _live_pages(
    record: JobRecord, progress: JobProgress
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Counts by state and the per-page entries of a running job (shared: never mutate)."""
    key = (progress.states_raw, tuple(sorted(progress.errors.items())))
    with _LIVE_PAGES_LOCK:
        cached = _LIVE_PAGES.get(record.task_id)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    states = progress.page_states
    counts = {s: 0 for s in ("queued", "running", "done", "failed", "skipped", "cancelled")}
    for state in states:
        counts[state] += 1
    numbers = _page_numbers(record.task_id)
    pages = [
        {
            "number": numbers[i] if i < len(numbers) else i + 1,
            "state": state,
            **({"reason": progress.errors[i]} if i in progress.errors else {}),
        }
        for i, state in enumerate(states)
    ]
    with _LIVE_PAGES_LOCK:
        _LIVE_PAGES[record.task_id] = (key, counts, pages)
        _LIVE_PAGES.move_to_end(record.task_id)
        while len(_LIVE_PAGES) > _LIVE_PAGES_JOBS:
            _LIVE_PAGES.popitem(last=False)
    return counts, pages


def _live_status(record: JobRecord, progress: JobProgress) -> dict[str, Any]:
    counts, pages = _live_pages(record, progress)
    finished = record.total - counts["queued"] - counts["running"]
    eta = None
    if progress.first_started and finished:
        elapsed = max(time.time() - progress.first_started, 0.001)
        # Never "0 s left" while pages remain: a page still running takes some time.
        eta = max(1, round((record.total - finished) * elapsed / finished))
    return {
        "state": "running" if progress.first_started else "queued",
        "task_id": record.task_id,
        "engine": record.engine,
        "language": record.language,
        "started_at": record.started_at,
        "finished_at": None,
        "total": record.total,
        **counts,
        "percent": _percent(finished, record.total),
        "eta_seconds": eta,
        "pages": pages,
    }


def _ended_status(job: Job) -> dict[str, Any]:
    rows = db.session.execute(
        select(JobPage.state, JobPage.reason, Page.number)
        .join(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == job.id)
        .order_by(JobPage.position)
    ).all()
    counts = {s: 0 for s in ("queued", "running", "done", "failed", "skipped", "cancelled")}
    pages = []
    for state, reason, number in rows:
        counts[state] = counts.get(state, 0) + 1
        pages.append({"number": number, "state": state, **({"reason": reason} if reason else {})})
    finished = job.total - counts["queued"]
    return {
        "state": job.state,
        "task_id": job.id,
        "engine": job.engine,
        "language": job.language,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "total": job.total,
        **counts,
        "percent": _percent(finished, job.total),
        "eta_seconds": None,
        "pages": pages,
    }


def _percent(finished: int, total: int) -> int:
    """Whole percent finished, 0-100; 100 only when every page has finished."""
    if total <= 0:
        return 100
    return 100 if finished >= total else min(99, finished * 100 // total)
