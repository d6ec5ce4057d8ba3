"""Jobs over a project's pages, whatever their kind (batch OCR, exports, search and replace):
starting, running a page, ending, the watchdog, status and history.

The kinds differ only in what they do to a page (kinds.py); app/services/batch_ocr/ and
app/services/exports/ build on this package.
"""

from __future__ import annotations

from app import queue
from app.extensions import db
from app.models import Job, JobKind, JobState
from app.services.jobs.kinds import JOB_TYPES, JobType, presence, tracker
from app.services.jobs.lifecycle import (
    JobError,
    StartOutcome,
    cancel_job,
    check_running_job,
    current_job,
    end_job,
    latest_job,
    pages_ready,
    start_job,
    stop_job,
    watch_jobs,
)
from app.services.jobs.status import NO_JOB, JobStatus, ended_status, live_status


@queue.needs_redis
def job_status(project, kind: JobKind) -> JobStatus:
    """The project's running job of `kind` if there is one, else its last one, else NO_JOB.

    Ends a job found to have lost its tasks or finished all its pages on the way.
    """
    record = current_job(project, kind)
    if record is not None:
        progress = tracker(kind).progress_of(record)
        job = db.session.get(Job, record.task_id)
        if job is None:  # being started right now
            return live_status(kind, record, progress)
        if check_running_job(job, progress):
            starter = job.started_by.username if job.started_by else None
            return live_status(kind, record, progress, started_by=starter)
    job = latest_job(project, kind)
    if job is None:
        return NO_JOB
    if not JobState(job.state).is_terminal:
        # Live in the database but without its Redis record: the record was lost.
        check_running_job(job, None)
    return ended_status(job)


def status_of(job: Job) -> JobStatus:
    """The status of one job, live from Redis while it runs."""
    if not JobState(job.state).is_terminal:
        record = tracker(job.kind).current(job.project.slug)
        if record is not None and record.task_id == job.id:
            progress = tracker(job.kind).progress_of(record)
            starter = job.started_by.username if job.started_by else None
            return live_status(job.kind, record, progress, started_by=starter)
    return ended_status(job)


__all__ = [
    "JOB_TYPES",
    "NO_JOB",
    "JobError",
    "JobStatus",
    "JobType",
    "StartOutcome",
    "cancel_job",
    "check_running_job",
    "current_job",
    "end_job",
    "ended_status",
    "job_status",
    "latest_job",
    "live_status",
    "pages_ready",
    "presence",
    "start_job",
    "stop_job",
    "status_of",
    "tracker",
    "watch_jobs",
]
