"""A job's life, whatever its kind: start, end, cancel, interruption, and the watchdog.

1. `start_job` claims the kind's record for the project with SET NX (two clicks give one job),
   records the Job and one JobPage per page in the database, and sends the first window of
   pages (app/services/jobs/window.py). The request answers at once however long the book.
2. Each page's task runs `run_item` (items.py); the one that finishes the last page ends the
   job (or, for a kind with an assembly step, sends that step, which ends it).
3. `cancel_job` cancels the pages not yet running and deletes the record at once.
4. `watch_jobs` (the watchdog: every few seconds from any live worker, and on status reads)
   gives back the pages of dead workers, fills windows that a lost task left short, ends jobs
   whose last page's task died before ending them, and marks interrupted a job that made no
   progress for OCR_STALL_TIMEOUT.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select, update

from app import queue
from app.extensions import db
from app.job_tracking import JobProgress, JobRecord
from app.models import (
    LIVE_JOB_STATES,
    ItemState,
    Job,
    JobKind,
    JobPage,
    JobState,
    Project,
    User,
    utcnow,
)
from app.services import job_events
from app.services.jobs.heartbeat import stale_after
from app.services.jobs.kinds import JOB_TYPES, tracker
from app.services.jobs.window import top_up

log = logging.getLogger(__name__)

#: How long a record may name a job not yet in the database: a start claims the record, then
#: commits the job, and that commit may wait on SQLite's write lock (busy timeout 30 s).
START_GRACE_SECONDS = 60
#: A page taken for sending and not confirmed sent after this long is sent again (the process
#: sending it died between the two).
SEND_STALE_SECONDS = 30


class JobError(ValueError):
    """A user-facing reason a job action cannot be done."""


@dataclass(frozen=True)
class StartOutcome:
    job_id: str
    #: False when a job of the kind was already running: the caller shows that job.
    started: bool


def iso(moment: datetime | None) -> str | None:
    return moment.replace(tzinfo=UTC).isoformat() if moment else None


def record_of(job: Job) -> JobRecord:
    options = job.options or {}
    return JobRecord(
        task_id=job.id,
        started_at=iso(job.started_at),
        project_slug=job.project.slug,
        total=job.total,
        engine=job.engine or "",
        language=job.language or "",
        format=options.get("format", ""),
    )


# -- starting ----------------------------------------------------------------------------


@queue.needs_redis
def start_job(
    project: Project,
    kind: JobKind,
    *,
    page_ids: Sequence[int | None],
    selection: str,
    user: User | None,
    engine: str | None = None,
    language: str | None = None,
    options: dict[str, Any] | None = None,
    preparing: bool = False,
) -> StartOutcome:
    """Start a job of `kind` over `page_ids` (in job order), or return the one running.

    With `preparing`, the pages are not rendered yet (a job started with its upload): their
    ids are None, and `pages_ready` sends each page as its image appears.
    """
    running = current_job(project, kind)
    if running is not None:
        return StartOutcome(job_id=running.task_id, started=False)
    now = utcnow()
    record = JobRecord(
        task_id=str(uuid.uuid4()),
        started_at=iso(now),
        project_slug=project.slug,
        total=len(page_ids),
        engine=engine or "",
        language=language or "",
        format=(options or {}).get("format", ""),
    )
    jobs = tracker(kind)
    existing = jobs.claim(record, preparing=preparing)
    if existing is not None:
        return StartOutcome(job_id=existing.task_id, started=False)
    try:
        job = Job(
            id=record.task_id,
            kind=kind,
            project_id=project.id,
            engine=engine,
            language=language,
            selection=selection,
            options=options,
            state=JobState.QUEUED,
            started_by_id=user.id if user else None,
            started_at=now,
            total=len(page_ids),
        )
        db.session.add(job)
        db.session.flush()
        state = ItemState.PREPARING if preparing else ItemState.QUEUED
        if page_ids:  # a job of no pages (an export resumed with every part made) has no rows
            db.session.execute(
                insert(JobPage),
                [
                    {"job_id": job.id, "position": position, "page_id": page_id, "state": state}
                    for position, page_id in enumerate(page_ids)
                ],
            )
        db.session.commit()
        top_up(kind, record)
    except BaseException:
        # Nothing half-made: no record in Redis, no job in the database.
        db.session.rollback()
        forget_job(kind, record)
        raise
    log.info(
        "%s job %s started on %s: %d pages (%s)",
        kind,
        job.id,
        project.slug,
        len(page_ids),
        selection,
    )
    job_events.job_started(job)
    return StartOutcome(job_id=job.id, started=True)


def forget_job(kind: JobKind, record: JobRecord) -> None:
    """Undo a start that failed half-way: the record, then the rows."""
    try:
        tracker(kind).end(record)
    except queue.REDIS_DOWN:
        log.warning("could not delete the record of %s after a failed start", record.task_id)
    job = db.session.get(Job, record.task_id)
    if job is not None:
        db.session.delete(job)
        db.session.commit()


def pages_ready(project: Project, kind: JobKind, positions_and_pages: dict[int, int]) -> int:
    """Pages of the project's running job whose images now exist (position -> page id):
    record their pages and send them. Returns how many were waiting for it."""
    record = tracker(kind).current(project.slug)
    if record is None:
        return 0
    for position, page_id in positions_and_pages.items():
        db.session.execute(
            update(JobPage)
            .filter_by(job_id=record.task_id, position=position)
            .where(JobPage.page_id.is_(None))
            .values(page_id=page_id, state=ItemState.QUEUED)
        )
    db.session.commit()
    made = tracker(kind).make_ready(record, list(positions_and_pages))
    top_up(kind, record)
    return made


# -- ending ------------------------------------------------------------------------------


def end_job(job_id: str, state: JobState | None = None, message: str | None = None) -> Job | None:
    """Complete the job's database record, then delete its Redis record by name.

    Safe to call more than once: a job already in a terminal state keeps it, and the end is
    announced (job_events) only by the call that made it terminal.
    """
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    counts = dict(
        db.session.execute(
            select(JobPage.state, func.count()).filter_by(job_id=job_id).group_by(JobPage.state)
        ).all()
    )
    job.done = counts.get(ItemState.DONE, 0)
    job.failed = counts.get(ItemState.FAILED, 0)
    job.skipped = counts.get(ItemState.SKIPPED, 0)
    ended_now = not JobState(job.state).is_terminal
    if ended_now:
        if state is not None:
            job.state = state
        elif job.failed and not job.done:
            job.state = JobState.FAILED
        elif job.failed:
            job.state = JobState.PARTIALLY_FAILED
        else:
            job.state = JobState.SUCCEEDED
        job.finished_at = utcnow()
        if message:
            job.message = message[:500]
    db.session.commit()
    tracker(job.kind).end(record_of(job))
    if ended_now:
        log.info(
            "%s job %s ended: %s (%d done, %d failed, %d skipped)",
            job.kind,
            job.id,
            job.state,
            job.done,
            job.failed,
            job.skipped,
        )
        job_events.job_ended(job)
    return job


def all_pages_finished(job: Job) -> bool:
    """The job's last page has finished: end it, or send its assembly step. True if the job
    is still live afterwards (its assembly, which ends it, is on its way or running).

    The assembly is asked for again by every watchdog pass and status read until it ends the
    job (its worker may have died); it is sent at most once per SEND_STALE_SECONDS, and the
    assembly itself runs once at a time (JobTracker.claim_assembly).
    """
    assemble = JOB_TYPES[JobKind(job.kind)].assemble_task
    if assemble is None:
        end_job(job.id)
        return False
    if tracker(job.kind).request_assembly(job.id, SEND_STALE_SECONDS):
        queue.enqueue(assemble, job_id=job.id)
    return True


@queue.needs_redis
def cancel_job(project: Project, kind: JobKind) -> Job:
    """Stop the pages not yet started; pages already done keep their result."""
    return stop_job(project, kind, JobState.CANCELLED)


def stop_job(project: Project, kind: JobKind, state: JobState, message: str | None = None) -> Job:
    """End the running job in `state` now: pages not yet running are cancelled, pages
    running finish and keep their result."""
    record = tracker(kind).current(project.slug)
    job = db.session.get(Job, record.task_id) if record else None
    if record is None or job is None or JobState(job.state).is_terminal:
        raise JobError(f"No {_what(kind)} is running for this project.")
    # The database says it has ended first: a poll racing this call then sees a job that has
    # ended, never a live job without its record (which it would mark interrupted).
    job.state = state
    job.finished_at = utcnow()
    job.message = message[:500] if message else None
    db.session.commit()
    tracker(kind).cancel(record)
    states = tracker(kind).progress_of(record).page_states
    cancelled = [i for i, state in enumerate(states) if state == ItemState.CANCELLED]
    if cancelled:
        db.session.execute(
            update(JobPage)
            .where(
                JobPage.job_id == job.id,
                JobPage.position.in_(cancelled),
                JobPage.state.in_((ItemState.QUEUED, ItemState.PREPARING)),
            )
            .values(state=ItemState.CANCELLED, finished_at=utcnow())
        )
        db.session.commit()
    log.info("%s job %s %s: %d pages not run", kind, job.id, state, len(cancelled))
    return end_job(job.id) or job


def _what(kind: JobKind) -> str:
    return {
        JobKind.OCR: "batch OCR job",
        JobKind.EXPORT: "export",
        JobKind.REPLACE: "search and replace",
    }[JobKind(kind)]


def interrupt_job(job: Job, reason: str) -> None:
    log.warning("%s job %s interrupted: %s", job.kind, job.id, reason)
    end_job(job.id, state=JobState.INTERRUPTED, message=reason)


def check_running_job(job: Job, progress: JobProgress | None) -> bool:
    """End the job if its tasks were lost or all its pages finished. True if it is live."""
    if progress is None:
        interrupt_job(job, "its record disappeared from Redis (restarted without persistence?)")
        return False
    if progress.finished >= job.total:
        # The page that finished last died before ending the job, or the job waits for its
        # assembly step (which is live until it ends the job).
        return all_pages_finished(job)
    stall = current_app.config["OCR_STALL_TIMEOUT"]
    if progress.last_progress is not None and time.time() - progress.last_progress > stall:
        interrupt_job(job, f"no page started, finished or beat for {stall} s (workers lost?)")
        return False
    return True


def watch_job(job: Job) -> bool:
    """One watchdog pass over one live job. True if it is still live afterwards."""
    jobs = tracker(job.kind)
    record = jobs.current(job.project.slug)
    if record is None or record.task_id != job.id:
        # A start claims the record before it commits the job: a live job without its
        # record has lost it.
        return check_running_job(job, None)
    released = jobs.release_lost(
        record,
        heartbeat_stale=stale_after(current_app.config["JOB_HEARTBEAT_SECONDS"]),
        send_stale=SEND_STALE_SECONDS,
    )
    if released:
        log.warning(
            "job %s: %d pages of lost workers or sends will be sent again", job.id, released
        )
    top_up(job.kind, record)
    return check_running_job(job, jobs.progress_of(record))


def watch_jobs() -> int:
    """The watchdog over every job the database says is live; returns how many ended."""
    ended = 0
    live = db.session.scalars(select(Job).where(Job.state.in_(LIVE_JOB_STATES))).all()
    for job in live:
        try:
            if not watch_job(job):
                ended += 1
        except queue.REDIS_DOWN:
            raise
        except Exception:  # noqa: BLE001 -- one broken job must not stop the watch of the rest
            db.session.rollback()
            log.exception("watchdog: job %s", job.id)
    return ended


# -- reading -----------------------------------------------------------------------------


def current_job(project: Project, kind: JobKind) -> JobRecord | None:
    """The project's live job of `kind`, after clearing a record that names no live job."""
    jobs = tracker(kind)
    record = jobs.current(project.slug)
    if record is None:
        return None
    job = db.session.get(Job, record.task_id)
    if job is None and age_seconds(record.started_at) < START_GRACE_SECONDS:
        return record  # claimed by a start whose database row is not committed yet
    if job is None or JobState(job.state).is_terminal:
        log.warning(
            "clearing %s: it names job %s, which is not live",
            jobs.record_key(project.slug),
            record.task_id,
        )
        jobs.end(record)
        return None
    return record


def age_seconds(started_at: str | None) -> float:
    try:
        started = datetime.fromisoformat(started_at or "")
    except ValueError:
        return float("inf")
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (datetime.now(UTC) - started).total_seconds()


def latest_job(project: Project, kind: JobKind) -> Job | None:
    return db.session.scalar(
        select(Job)
        .filter_by(project_id=project.id, kind=kind)
        .order_by(Job.started_at.desc())
        .limit(1)
    )
