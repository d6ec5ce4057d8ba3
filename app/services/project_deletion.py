"""Deleting a project: every row, file and Redis key of it, or nothing at all.

A project is deleted only when nothing works on it: no job of it is queued or running and it is
not being split (a page task writing into a project being deleted would recreate what was just
removed). To keep a job from starting between that check and the deletion, the project is
first taken out of READY (a job starts only on a ready project) and then checked.

Rows go in one transaction, children first: notifications and webhook deliveries of its jobs,
exports, revisions, job pages, jobs, pages, members, the project. Files (page images, the
source, export files) are removed once the rows are gone, and so are the Redis keys its jobs
left (app/job_tracking.py names them, for every kind of job). Messages of the project still
waiting in a queue (a webhook retry, a straggling page) need no removal: each task finds its
row gone and does nothing, as every task here is idempotent.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, func, select, update

from app import queue
from app.extensions import db
from app.job_tracking import TRACKED
from app.models import (
    LIVE_JOB_STATES,
    Export,
    Job,
    JobKind,
    JobPage,
    Notification,
    Page,
    Project,
    ProjectMember,
    ProjectStatus,
    Revision,
    WebhookDelivery,
)
from app.services.projects import project_dir

log = logging.getLogger(__name__)

JOB_NAMES = {JobKind.OCR: "batch OCR", JobKind.EXPORT: "export", JobKind.REPLACE: "replace"}
#: The order the summary names what went in.
ROW_ORDER = (
    "pages",
    "revisions",
    "jobs",
    "job pages",
    "members",
    "exports",
    "notifications",
    "webhook deliveries",
)
#: What stands in the project's status while it is being deleted (never seen for long).
DELETING_MESSAGE = "This project is being deleted."


class ProjectDeletionError(ValueError):
    """A user-facing reason the project cannot be deleted now."""


@dataclass
class DeletionReport:
    """What a deletion removed, for the CLI and the flash message."""

    slug: str
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    redis_keys: int = 0

    def summary(self) -> str:
        counts = ", ".join(f"{self.rows[name]} {name}" for name in ROW_ORDER if self.rows.get(name))
        return (
            f"project {self.slug} deleted: {counts or 'no rows besides it'}; "
            f"{self.files} files, {self.redis_keys} Redis keys"
        )


def what_would_go(project: Project) -> dict[str, int]:
    """The rows a deletion removes, by kind, for the confirmation page."""
    jobs = select(Job.id).filter_by(project_id=project.id)
    pages = select(Page.id).filter_by(project_id=project.id)
    return {
        "pages": _count(select(func.count(Page.id)).filter_by(project_id=project.id)),
        "revisions": _count(select(func.count(Revision.id)).where(Revision.page_id.in_(pages))),
        "jobs": _count(select(func.count(Job.id)).filter_by(project_id=project.id)),
        "job pages": _count(select(func.count(JobPage.position)).where(JobPage.job_id.in_(jobs))),
        "exports": _count(select(func.count(Export.id)).filter_by(project_id=project.id)),
        "members": _count(
            select(func.count(ProjectMember.user_id)).filter_by(project_id=project.id)
        ),
    }


def _count(query) -> int:
    return db.session.scalar(query) or 0


def refusal(project: Project) -> str | None:
    """Why `project` cannot be deleted right now, or None."""
    if project.status == ProjectStatus.SPLITTING:
        return (
            "The project's pages are still being prepared. Wait for the split to end, "
            "then delete it."
        )
    live = db.session.scalar(
        select(Job).filter(Job.project_id == project.id, Job.state.in_(LIVE_JOB_STATES)).limit(1)
    )
    if live is None:
        for tracker in current_app.extensions["job_trackers"].values():
            record = tracker.current(project.slug)
            if record is not None:
                started = db.session.get(Job, record.task_id)
                if started is None or started.state in LIVE_JOB_STATES:
                    return "A job of this project is starting. Cancel it first, then delete."
    if live is not None:
        what = JOB_NAMES.get(live.kind, live.kind)
        return (
            f"The {what} job of this project is {live.state}. Cancel it first (on its "
            f"page, or `flask ocr cancel {project.slug}`), then delete the project."
        )
    return None


@queue.needs_redis
def delete_project(project: Project) -> DeletionReport:
    """Delete `project` with everything of it; ProjectDeletionError if it is busy."""
    slug, project_id = project.slug, project.id
    previous = (project.status, project.status_message)
    if project.status == ProjectStatus.SPLITTING:
        raise ProjectDeletionError(refusal(project))
    # Out of READY first, so that no job can start while this runs; then check.
    taken = db.session.execute(
        update(Project)
        .filter_by(id=project_id, status=previous[0])
        .values(status=ProjectStatus.FAILED, status_message=DELETING_MESSAGE)
    ).rowcount
    db.session.commit()
    if not taken:
        raise ProjectDeletionError("The project changed meanwhile; look at it again.")
    db.session.refresh(project)
    try:
        reason = refusal(project)
    except BaseException:  # Redis down: the project must not stay "being deleted"
        _restore(project_id, previous)
        raise
    if reason is not None:
        _restore(project_id, previous)
        raise ProjectDeletionError(reason)

    job_ids = list(db.session.scalars(select(Job.id).filter_by(project_id=project_id)))
    export_paths = list(db.session.scalars(select(Export.path).filter_by(project_id=project_id)))
    report = DeletionReport(slug=slug)
    jobs = select(Job.id).filter_by(project_id=project_id)
    pages = select(Page.id).filter_by(project_id=project_id)
    statements = [
        ("notifications", delete(Notification).where(Notification.job_id.in_(jobs))),
        ("webhook deliveries", delete(WebhookDelivery).filter_by(project_id=project_id)),
        ("exports", delete(Export).filter_by(project_id=project_id)),
        ("revisions", delete(Revision).where(Revision.page_id.in_(pages))),
        ("job pages", delete(JobPage).where(JobPage.job_id.in_(jobs))),
        ("jobs", delete(Job).filter_by(project_id=project_id)),
        ("pages", delete(Page).filter_by(project_id=project_id)),
        ("members", delete(ProjectMember).filter_by(project_id=project_id)),
    ]
    try:
        for name, statement in statements:
            report.rows[name] = db.session.execute(
                statement.execution_options(synchronize_session=False)
            ).rowcount
        db.session.execute(delete(Project).filter_by(id=project_id))
        db.session.commit()
    except BaseException:
        _restore(project_id, previous)
        raise

    report.files = _remove_files(slug, export_paths, job_ids)
    report.redis_keys = _remove_redis_keys(slug, job_ids)
    log.info("%s", report.summary())
    return report


def _restore(project_id: int, previous: tuple[str, str | None]) -> None:
    """Put the project back as it was before the deletion began."""
    db.session.rollback()
    db.session.execute(
        update(Project)
        .filter_by(id=project_id)
        .values(status=previous[0], status_message=previous[1])
    )
    db.session.commit()


def _remove_files(slug: str, export_paths: list[str], job_ids: list[str]) -> int:
    data_dir = Path(current_app.config["DATA_DIR"]).resolve()
    removed = 0
    directory = project_dir(slug)
    if directory.exists():
        removed += sum(1 for path in directory.rglob("*") if path.is_file())
        shutil.rmtree(directory, ignore_errors=True)
    for relative in export_paths:
        path = (data_dir / relative).resolve()
        # Only files inside the data directory, whatever a row says.
        if path.is_relative_to(data_dir) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    for job_id in job_ids:
        # An export's directory (its parts, kept for a resume) is named by its first job.
        exported = data_dir / "exports" / job_id
        if exported.is_dir() and exported.parent == data_dir / "exports":
            removed += sum(1 for path in exported.rglob("*") if path.is_file())
            shutil.rmtree(exported, ignore_errors=True)
    return removed


def _remove_redis_keys(slug: str, job_ids: list[str]) -> int:
    client = current_app.extensions["redis"]
    keys = [tracked.record_key(slug) for tracked in TRACKED.values()]
    for job_id in job_ids:
        for tracked in TRACKED.values():
            keys += tracked.job_keys(job_id)
            keys += [tracked.assembling_key(job_id), tracked.assembly_sent_key(job_id)]
    removed = 0
    for start in range(0, len(keys), 500):
        removed += client.delete(*keys[start : start + 500])
    return removed
