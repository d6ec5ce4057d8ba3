"""Ending batch OCR: cancel, and the watchdog that ends jobs whose workers were lost.

The lifecycle itself is every job's (app/services/jobs/lifecycle.py); this is its OCR face.
"""

from __future__ import annotations

from app import queue
from app.models import Job, JobKind, Project
from app.services import jobs
from app.services.batch_ocr.start import BatchOcrError


@queue.needs_redis
def cancel_batch_ocr(project: Project) -> Job:
    """Stop the pages not yet started; pages already done keep their text."""
    try:
        return jobs.cancel_job(project, JobKind.OCR)
    except jobs.JobError as exc:
        raise BatchOcrError(str(exc)) from None


def current_job(project: Project):
    """The project's live OCR job's record, or None."""
    return jobs.current_job(project, JobKind.OCR)


check_running_job = jobs.check_running_job
end_job = jobs.end_job
watch_jobs = jobs.watch_jobs
