"""What the batch OCR pages, the status JSON, the CLI and the API show of OCR jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import ItemState, JobKind, JobPage, Page, Project
from app.services import jobs


def job_status(project: Project) -> jobs.JobStatus:
    """The project's running OCR job, else its last one, else jobs.NO_JOB."""
    return jobs.job_status(project, JobKind.OCR)


def latest_job_summary(project: Project) -> dict[str, Any] | None:
    """The last job, for the project page: state, counts and the failed pages' reasons."""
    job = jobs.latest_job(project, JobKind.OCR)
    if job is None:
        return None
    failures = db.session.execute(
        select(Page.number, JobPage.reason)
        .join(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == job.id, JobPage.state == ItemState.FAILED)
        .order_by(JobPage.position)
        .limit(20)
    ).all()
    return {"job": job, "failures": failures}
