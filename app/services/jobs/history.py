"""Every job on record: lists by project, state, engine, kind and who started it, newest
first (running ones first where asked), with the visibility rules of projects.

The batch OCR page lists a project's past jobs, /jobs lists every job for admins, and
/api/jobs and `flask ocr jobs` list what the asker may see; they all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, exists, func, or_, select

from app.extensions import db
from app.models import LIVE_JOB_STATES, Job, JobState, Project, ProjectMember, Role, User
from app.services.jobs.lifecycle import iso
from app.services.jobs.status import JobStatus
from app.services.pagination import Paginated

#: Jobs per page of a list, and the most a client may ask for.
PER_PAGE = 20
MAX_PER_PAGE = 100


class FilterError(ValueError):
    """A filter a user gave cannot be used; the message says why."""


@dataclass(frozen=True)
class JobFilter:
    project: str | None = None
    state: str | None = None
    engine: str | None = None
    started_by: str | None = None
    kind: str | None = None

    def check(self) -> JobFilter:
        if self.state and self.state not in {s.value for s in JobState}:
            raise FilterError(
                f"Unknown state {self.state!r}; one of {', '.join(s.value for s in JobState)}."
            )
        return self


@dataclass(frozen=True)
class JobList(Paginated):
    jobs: list[Job]
    page: int
    per_page: int
    total: int


def _visible(query: Select, user: User | None) -> Select:
    """Only jobs of projects `user` may see (app/permissions.py `can_see`, in SQL)."""
    if user is None or getattr(user, "is_bot", False):
        return query.where(False)
    if user.role == Role.ADMIN:
        return query
    is_member = exists().where(
        ProjectMember.project_id == Project.id, ProjectMember.user_id == user.id
    )
    return query.where(or_(Project.is_private.is_(False), is_member))


def list_jobs(
    user: User | None,
    where: JobFilter = JobFilter(),
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
    running_first: bool = False,
    everything: bool = False,
) -> JobList:
    """The jobs `user` may see that match `where`, a page of them. `everything`: every job,
    for the command line, which is the operator's."""
    where.check()
    page = max(1, page)
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    query = select(Job).join(Project, Job.project_id == Project.id)
    if not everything:
        query = _visible(query, user)
    if where.project:
        query = query.where(Project.slug == where.project)
    if where.state:
        query = query.where(Job.state == where.state)
    if where.engine:
        query = query.where(Job.engine == where.engine)
    if where.kind:
        query = query.where(Job.kind == where.kind)
    if where.started_by:
        query = query.join(User, Job.started_by_id == User.id).where(
            User.username == where.started_by
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = [Job.started_at.desc(), Job.id]
    if running_first:
        order.insert(0, case((Job.state.in_(LIVE_JOB_STATES), 0), else_=1))
    jobs = db.session.scalars(
        query.order_by(*order).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return JobList(jobs=list(jobs), page=page, per_page=per_page, total=total)


def job_visible_to(user: User | None, task_id: str) -> Job | None:
    """The job, if `user` may see its project; None otherwise, as for a missing job."""
    query = _visible(
        select(Job).join(Project, Job.project_id == Project.id).where(Job.id == task_id), user
    )
    return db.session.scalar(query)


def job_summary(job: Job, live: JobStatus | None = None) -> dict[str, Any]:
    """A job as one entry of a list (the API, `flask ocr jobs --json`). The counts of a
    running job are in Redis, not yet in its row: pass its `live` status to show them."""
    summary = {
        "task_id": job.id,
        "kind": job.kind,
        "project": job.project.slug,
        "state": job.state,
        "engine": job.engine,
        "language": job.language,
        "selection": job.selection,
        "started_by": job.started_by.username if job.started_by else None,
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_seconds": duration_seconds(job),
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "skipped": job.skipped,
        "message": job.message,
    }
    if live is not None and live.is_live:
        summary.update(
            state=live.state,
            **{name: getattr(live, name) for name in ("done", "failed", "skipped", "percent")},
        )
    return summary


def with_live_counts(job: Job) -> dict[str, Any]:
    """`job_summary`, with the live counts of a running job."""
    from app.services.jobs import status_of  # the package builds on this module

    return job_summary(job, status_of(job) if job.state in LIVE_JOB_STATES else None)


def duration_seconds(job: Job) -> float | None:
    if job.finished_at is None:
        return None
    return (job.finished_at - job.started_at).total_seconds()
