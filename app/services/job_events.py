"""What else happens when a job starts, a page of it finishes, or it ends.

The job lifecycle (app/services/jobs/) calls these at those moments, whatever the kind of job;
notifications, webhooks and metrics hang here, so the lifecycle knows nothing of them. Each
must be quick and must not raise: a failure to notify never fails a job.

Call them after the job's row is committed: `job_ended` commits rows of its own (notifications,
the webhook delivery), and on a failure it rolls the session back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app

from app import metrics
from app.extensions import db
from app.models import Job
from app.services import notifications, webhooks

log = logging.getLogger(__name__)


def _quietly(what: str, job: Job, action: Callable[..., Any], *args: Any) -> None:
    """Run one reaction; log, and leave the session usable, if it fails."""
    try:
        action(*args)
    except Exception:  # noqa: BLE001 -- whatever goes wrong here, the job goes on
        log.exception("job %s: %s failed", job.id, what)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 -- a broken connection is the lifecycle's to find
            log.warning("job %s: rollback after %s failed too", job.id, what)


def _redis() -> Any:
    return current_app.extensions["redis"]


def job_started(job: Job) -> None:
    """The job's row is committed and its first pages are on their way."""
    _quietly("counting its start", job, lambda: metrics.count_job_started(_redis(), job))


def page_finished(job: Job, outcome: str, seconds: float | None, worker: str | None) -> None:
    """A page of `job` finished with `outcome` (an ItemState value) after `seconds` of work
    (None when no work was done, e.g. a page skipped), on the Celery node `worker`.

    Call it once per page outcome that the tracker counted (a redelivered page that changes
    nothing must not call it again), or the counters count it twice."""
    _quietly(
        "counting a page",
        job,
        lambda: metrics.count_page_finished(_redis(), job, outcome, seconds, worker),
    )


def job_ended(job: Job) -> None:
    """`job` has reached its terminal state, and its counts are final. Safe to call twice:
    the counters, the notifications and the webhook each happen once per job."""
    _quietly("counting its end", job, lambda: metrics.count_job_ended(_redis(), job))
    _quietly("notifying", job, notifications.notify_job_ended, job)
    _quietly("sending the webhook", job, webhooks.send_job_ended, job)
