"""What else happens when a job starts, a page of it finishes, or it ends.

The job lifecycle (app/services/jobs/) calls these at those moments, whatever the kind of job;
notifications, webhooks and metrics hang here, so the lifecycle knows nothing of them. Each
must be quick and must not raise: a failure to notify never fails a job.
"""

from __future__ import annotations

from app.models import Job


def job_started(job: Job) -> None:
    """The job's row is committed and its first pages are on their way."""


def page_finished(job: Job, outcome: str, seconds: float | None, worker: str | None) -> None:
    """A page of `job` finished with `outcome` (an ItemState value) after `seconds` of work
    (None when no work was done, e.g. a page skipped), on the Celery node `worker`."""


def job_ended(job: Job) -> None:
    """`job` has reached its terminal state, and its counts are final."""
