"""Fault tests (`make chaos`): real processes are killed and restarted mid-job, and what happened
and how long recovery took is written to a results table (docs/reliability.md).

The helpers here are the fault suite's own: the book it OCRs, its results table, and reading
what a job did. What other suites share (stacks, gunicorn, signed-in HTTP users) is in
tests/support.py.
"""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, JobKind, Page, Project, Revision
from app.services import batch_ocr, jobs
from tests.support import ResultsTable, Worker

#: The book of the fault tests: 12 of the fastest pages of multipage.pdf (~0.5 s each, idle).
BOOK_PAGES = [2, 3] * 6

#: The fault table, in the order the tests ran; printed at the end of the session.
RESULTS = ResultsTable(
    "fault results", "chaos-results.md", ("fault", "what was broken", "what happened", "recovery")
)


def record_result(fault: str, broken: str, happened: str, recovery: str) -> None:
    """A row of the fault table: call it once the test's asserts have passed."""
    RESULTS.add(fault, broken, happened, recovery)


def start_job(project: Project, selection: str = "all") -> batch_ocr.StartOutcome:
    outcome = batch_ocr.start_batch_ocr(
        project, engine="tesseract", language=None, selection=selection, user=None
    )
    assert outcome.started
    return outcome


def job_seconds(job_id: str) -> float:
    """From the job's start to its end, as the database recorded them."""
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.finished_at is not None, job.state
    return (job.finished_at - job.started_at).total_seconds()


def revisions_per_page(project_id: int, job_id: str) -> dict[int, int]:
    """Page number -> revisions written by the job (0 for pages it did not write)."""
    rows = db.session.execute(
        select(Page.number, func.count(Revision.id))
        .outerjoin(Revision, (Revision.page_id == Page.id) & (Revision.job_id == job_id))
        .filter(Page.project_id == project_id)
        .group_by(Page.number)
    ).all()
    return dict(rows)


def live_counts(project: Project) -> dict:
    db.session.expire_all()
    return batch_ocr.job_status(project).to_dict()


def process_mid_page(worker: Worker, project) -> int | None:
    """A pool process of `worker` running a page of the project's OCR job, as the page's
    running entry names it ("host:pid"), once the job has done at least one page."""
    if live_counts(project).get("done", 0) < 1:
        return None
    record = jobs.current_job(project, JobKind.OCR)
    if record is None:
        return None
    pool = set(worker.child_pids())
    for page in jobs.tracker(JobKind.OCR).running_pages(record):
        pid = page.worker.rpartition(":")[2]
        if pid.isdigit() and int(pid) in pool:
            return int(pid)
    return None


def every_page_has_one_revision(project, job_id: str) -> None:
    per_page = revisions_per_page(project.id, job_id)
    assert per_page == {number: 1 for number in range(1, len(BOOK_PAGES) + 1)}, per_page
