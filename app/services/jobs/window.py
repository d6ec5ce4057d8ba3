"""Fair share: each running job keeps only a window of its pages in the broker.

A job's pages wait in Redis (app/job_tracking.py) and are sent a few at a time: when the job
starts, as each page becomes ready (a page rendered from a fresh upload), and each time one of
its pages finishes. With every job holding at most about twice as many messages as there are
worker processes, the queue interleaves the running jobs: a 2-page job started while a
2000-page one runs waits for about one page time, not for the 2000 pages, and a running job
costs Redis a handful of messages rather than one per page (docs/performance.md).

Sending is safe to repeat and to interrupt: the pages taken are noted before they are sent and
confirmed after; a send that never completes is given back by the watchdog and sent again, and
a message sent twice runs its page once (`JobTracker.mark_running`).
"""

from __future__ import annotations

from flask import current_app

from app import queue
from app.job_tracking import JobRecord
from app.models import JobKind
from app.services.jobs.kinds import JOB_TYPES, JobType, presence, tracker

#: The smallest window: a job always has a page ready for the next free process.
MIN_WINDOW = 2


def window_size(job_type: JobType) -> int:
    """JOB_WINDOW if set, else twice the worker processes that take the job's queue."""
    configured = current_app.config["JOB_WINDOW"]
    if configured:
        return configured
    return max(MIN_WINDOW, 2 * presence().processes(job_type.queue))


def top_up(kind: JobKind | str, record: JobRecord) -> int:
    """Send the job's next waiting pages until its window is full; returns how many."""
    job_type = JOB_TYPES[JobKind(kind)]
    jobs = tracker(kind)
    positions = jobs.take(record, window_size(job_type))
    for position in positions:
        queue.send_page(
            job_type.page_task, queue=job_type.queue, job_id=record.task_id, position=position
        )
    jobs.confirm_sent(record, positions)
    return len(positions)
