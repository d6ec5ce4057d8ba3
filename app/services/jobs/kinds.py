"""The kinds of job, and what differs between them: the page task and the queue it runs on.

Everything else (tracking, the window of pages sent, heartbeats, ending, status, history) is
the same for every kind and lives beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app import task_names
from app.job_tracking import JobTracker
from app.models import JobKind
from app.worker_presence import Presence


@dataclass(frozen=True)
class JobType:
    kind: JobKind
    #: The task that does one page of the job.
    page_task: str
    #: The queue the page tasks go to.
    queue: str
    #: The task that turns the finished pages into the job's result and then ends the job
    #: (an export's file); None: the job ends when its last page finishes.
    assemble_task: str | None = None


JOB_TYPES: dict[JobKind, JobType] = {
    JobKind.OCR: JobType(JobKind.OCR, task_names.OCR_PAGE, task_names.OCR_QUEUE),
    JobKind.EXPORT: JobType(
        JobKind.EXPORT,
        task_names.EXPORT_PAGE,
        task_names.DEFAULT_QUEUE,
        assemble_task=task_names.ASSEMBLE_EXPORT,
    ),
    JobKind.REPLACE: JobType(JobKind.REPLACE, task_names.REPLACE_PAGE, task_names.DEFAULT_QUEUE),
}


def tracker(kind: JobKind | str) -> JobTracker:
    return current_app.extensions["job_trackers"][JobKind(kind)]


def presence() -> Presence:
    return current_app.extensions["worker_presence"]
