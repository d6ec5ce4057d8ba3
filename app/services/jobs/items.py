"""Running one page of a job, whatever the kind: the part every page task shares.

`run_item` checks that the job is live and the page still to do, marks it running under the
worker's name with a heartbeat, calls the kind's work for the page, records the outcome in the
database and then in Redis, tops up the job's window and, for the page that was last, ends the
job. Each step is idempotent, so a redelivered or duplicated message changes nothing done.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from app.extensions import db
from app.job_tracking import MAX_REASON, JobRecord
from app.models import OUTCOME_STATES, ItemState, Job, JobPage, JobState, utcnow
from app.services import job_events
from app.services.jobs.heartbeat import heartbeat, stale_after
from app.services.jobs.kinds import tracker
from app.services.jobs.lifecycle import all_pages_finished
from app.services.jobs.window import top_up

log = logging.getLogger(__name__)

NOT_RUN = "not run"


@dataclass(frozen=True)
class PageOutcome:
    #: An outcome ItemState value ("done", "failed", "skipped"), or NOT_RUN.
    outcome: str
    reason: str = ""


#: The work of one page: given the job and the page's row, return its outcome. A "done"
#: outcome has been written by the work itself (in the same transaction as its result);
#: other outcomes are written here.
PageWork = Callable[[Job, JobPage], PageOutcome]


def run_item(job_id: str, position: int, work: PageWork, *, worker: str) -> PageOutcome:
    """Run one page of a job with `work`, on behalf of the Celery node `worker`."""
    job = db.session.get(Job, job_id)
    job_page = db.session.get(JobPage, (job_id, position))
    if job is None or job_page is None:
        return PageOutcome(NOT_RUN, "the job no longer exists")
    jobs = tracker(job.kind)
    record = jobs.current(job.project.slug)
    if record is None or record.task_id != job_id:
        return PageOutcome(NOT_RUN, "the job has ended")
    if job_page.state in OUTCOME_STATES:
        # Finished in the database but the Redis update was lost (a worker killed between
        # the two): record it now; finish_page counts a page at most once.
        finish(job, record, position, PageOutcome(job_page.state, job_page.reason or ""))
        return PageOutcome(job_page.state, job_page.reason or "")
    interval = current_app.config["JOB_HEARTBEAT_SECONDS"]
    if not jobs.mark_running(record, position, worker, stale_after(interval)) and not (
        _holder_died_here(jobs.running_pages(record), position, worker)
        and jobs.mark_running(record, position, worker, stale_after=0)
    ):
        return PageOutcome(NOT_RUN, "the page was cancelled, finished or is running elsewhere")
    if job.state == JobState.QUEUED:
        db.session.query(Job).filter_by(id=job_id, state=JobState.QUEUED).update(
            {"state": JobState.RUNNING}
        )
        db.session.commit()
    started = time.monotonic()
    with heartbeat(jobs, record, position, worker, interval):
        outcome = work(job, job_page)
    seconds = time.monotonic() - started
    if outcome.outcome != ItemState.DONE:
        save_outcome(job_page, outcome)
    if finish(job, record, position, outcome):
        job_events.page_finished(job, outcome.outcome, seconds, node_of(worker))
    return outcome


def node_of(worker: str) -> str:
    """The Celery node of a page's worker name (`<node>:<pid>`)."""
    return worker.rpartition(":")[0] or worker


def _holder_died_here(running: list, position: int, worker: str) -> bool:
    """Whether the page is held by a process of this same worker node that no longer exists:
    a pool process killed mid-page, whose page Celery has just handed back. Its heartbeat is
    still fresh, but there is no need to wait for it to go stale."""
    node, _, _pid = worker.rpartition(":")
    for page in running:
        if page.position != position:
            continue
        holder_node, _, holder_pid = page.worker.rpartition(":")
        if holder_node != node or not holder_pid.isdigit():
            return False
        try:
            os.kill(int(holder_pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return False


def fail_item(job_id: str, position: int, reason: str, *, worker: str | None = None) -> None:
    """Fail a page whose task broke off (time limit, unexpected error): the job goes on."""
    db.session.rollback()
    job = db.session.get(Job, job_id)
    job_page = db.session.get(JobPage, (job_id, position))
    if job is None or job_page is None or job_page.state in OUTCOME_STATES:
        return
    record = tracker(job.kind).current(job.project.slug)
    outcome = PageOutcome(ItemState.FAILED, reason)
    save_outcome(job_page, outcome)
    if record is not None and record.task_id == job_id and finish(job, record, position, outcome):
        job_events.page_finished(job, outcome.outcome, None, node_of(worker) if worker else None)


def defer_item(job_id: str, position: int, seconds: float) -> None:
    """The page's task will retry in `seconds`: keep the page from counting as lost."""
    job = db.session.get(Job, job_id)
    if job is None:
        return
    record = tracker(job.kind).current(job.project.slug)
    if record is not None and record.task_id == job_id:
        tracker(job.kind).defer(record, position, seconds)


def save_outcome(job_page: JobPage, outcome: PageOutcome) -> None:
    """Write a page's outcome that the work did not write itself."""
    job_page.state = outcome.outcome
    job_page.reason = outcome.reason[:MAX_REASON] or None
    job_page.finished_at = utcnow()
    db.session.commit()


def finish(job: Job, record: JobRecord, position: int, outcome: PageOutcome) -> bool:
    """Record the outcome in Redis; the page that was last ends the job, any other sends
    the job's next page. True if this call counted the page (the first to finish it)."""
    done = tracker(job.kind).finish_page(record, position, outcome.outcome, outcome.reason)
    if done.last:
        all_pages_finished(job)
    else:
        top_up(job.kind, record)
    return done.counted
