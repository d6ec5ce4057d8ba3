"""The admins' dashboard: workers, queues, running jobs, recent failures and throughput, read
in one place so that /admin stays a thin view.

Every part is read on its own and a part that cannot be read says so, rather than taking the
page down: an operator opens this page exactly when something is broken.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app import metrics, task_names
from app.extensions import db
from app.models import (
    FINISHED_ITEM_STATES,
    LIVE_JOB_STATES,
    ItemState,
    Job,
    JobPage,
    Page,
    Project,
    utcnow,
)
from app.queue import REDIS_DOWN
from app.services import cluster

log = logging.getLogger(__name__)

#: Failures listed at most (the count above the list is of all of them).
SHOWN_FAILURES = 100
FAILURE_HOURS = 24
RECENT_MINUTES = 10


@dataclass
class WorkerRow:
    hostname: str
    concurrency: int
    queues: tuple[str, ...]
    pid: int | None
    up_seconds: float | None
    #: What each busy process is doing, in words, with a link when it is a job's page.
    running: list[dict[str, Any]]
    pages_recent: int
    answering: bool = True


@dataclass
class Dashboard:
    workers: list[WorkerRow] = field(default_factory=list)
    workers_ok: bool = True
    queues: list[dict[str, Any]] = field(default_factory=list)
    queues_ok: bool = True
    jobs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_count: int = 0
    database_ok: bool = True
    #: (hour as a Unix time, pages) for the last 24 hours, oldest first.
    hourly: list[tuple[int, int]] = field(default_factory=list)
    pages_recent: int = 0
    throughput_ok: bool = True

    @property
    def pages_per_hour_now(self) -> int:
        """The rate of the last RECENT_MINUTES, scaled to an hour."""
        return self.pages_recent * 60 // RECENT_MINUTES

    @property
    def hourly_peak(self) -> int:
        return max((pages for _, pages in self.hourly), default=0)


def build() -> Dashboard:
    board = Dashboard()
    client = current_app.extensions["redis"]
    try:
        recent = metrics.pages_by_worker(client, RECENT_MINUTES)
        board.hourly = metrics.pages_per_hour(client, 24)
        board.pages_recent = sum(recent.values())
    except REDIS_DOWN:
        recent, board.throughput_ok = {}, False
    board.workers_ok = cluster.workers_reachable()
    nodes = cluster.workers()
    try:
        board.workers = _worker_rows(nodes, recent)
        board.jobs = _running_jobs()
        board.failure_count, board.failures = _failures()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("dashboard: database unreadable (%s)", type(exc).__name__)
        board.database_ok = False
    try:
        depths = cluster.queue_depths()
        board.queues = [
            {
                "name": name,
                "depth": depths.get(name, 0),
                "consumers": cluster.consumers(name),
            }
            for name in task_names.ALL_QUEUES
        ]
    except REDIS_DOWN:
        board.queues_ok = False
    return board


def _worker_rows(nodes: list[cluster.WorkerNode], recent: dict[str, int]) -> list[WorkerRow]:
    running = [task for node in nodes for task in node.running]
    pages = _page_numbers({(t.job_id, t.position) for t in running if t.job_id is not None})
    now = time.time()
    rows = [
        WorkerRow(
            hostname=node.hostname,
            concurrency=node.concurrency,
            queues=node.queues,
            pid=node.pid,
            up_seconds=now - node.started_at if node.started_at else None,
            running=[_describe(task, pages) for task in node.running],
            pages_recent=recent.get(node.hostname, 0),
        )
        for node in nodes
    ]
    # A node that finished pages lately but does not answer now is worth seeing: it may be
    # the one that died.
    answering = {node.hostname for node in nodes}
    rows += [
        WorkerRow(name, 0, (), None, None, [], count, answering=False)
        for name, count in sorted(recent.items())
        if name not in answering
    ]
    return rows


def _page_numbers(keys: set[tuple[str, int | None]]) -> dict[tuple[str, int], tuple[str, int]]:
    """(job id, position) -> (project slug, page number) for the pages being run."""
    job_ids = {job_id for job_id, _ in keys}
    if not job_ids:
        return {}
    rows = db.session.execute(
        select(JobPage.job_id, JobPage.position, Project.slug, Page.number)
        .join(Job, Job.id == JobPage.job_id)
        .join(Project, Project.id == Job.project_id)
        .join(Page, Page.id == JobPage.page_id)
        .where(JobPage.job_id.in_(job_ids))
        .where(JobPage.position.in_({position for _, position in keys if position is not None}))
    ).all()
    return {(job_id, position): (slug, number) for job_id, position, slug, number in rows}


def _describe(task: cluster.RunningTask, pages: dict) -> dict[str, Any]:
    name = task.name.rsplit(".", 1)[-1].replace("_", " ")
    described = {"task": name, "slug": None, "page": None, "seconds": None}
    if task.started_at:
        described["seconds"] = max(0, int(time.time() - task.started_at))
    found = pages.get((task.job_id, task.position))
    if found:
        described["slug"], described["page"] = found
    return described


def _running_jobs() -> list[dict[str, Any]]:
    jobs = db.session.scalars(
        select(Job).where(Job.state.in_(LIVE_JOB_STATES)).order_by(Job.started_at)
    ).all()
    # Live counts from the per-page rows, which each page's outcome updates as it finishes:
    # one grouped query for all running jobs, whatever their kind.
    counts: dict[str, dict[str, int]] = {job.id: {} for job in jobs}
    if jobs:
        for job_id, state, n in db.session.execute(
            select(JobPage.job_id, JobPage.state, func.count())
            .where(JobPage.job_id.in_(list(counts)))
            .group_by(JobPage.job_id, JobPage.state)
        ):
            counts[job_id][state] = n
    return [_job_row(job, counts[job.id]) for job in jobs]


def _job_row(job: Job, states: dict[str, int]) -> dict[str, Any]:
    finished = sum(states.get(state, 0) for state in FINISHED_ITEM_STATES)
    return {
        "job": job,
        "slug": job.project.slug,
        "title": job.project.title,
        "finished": finished,
        "done": states.get(ItemState.DONE, 0),
        "failed": states.get(ItemState.FAILED, 0),
        "percent": finished * 100 // job.total if job.total else 0,
        "starter": job.started_by.username if job.started_by else "command line",
        "age_seconds": (utcnow() - job.started_at).total_seconds(),
    }


def _failures() -> tuple[int, list[dict[str, Any]]]:
    since = utcnow() - timedelta(hours=FAILURE_HOURS)
    where = (JobPage.state == ItemState.FAILED, JobPage.finished_at >= since)
    count = db.session.scalar(select(func.count(JobPage.position)).where(*where)) or 0
    rows = db.session.execute(
        select(JobPage.finished_at, JobPage.reason, Page.number, Project.slug, Job.id, Job.engine)
        .join(Job, Job.id == JobPage.job_id)
        .join(Project, Project.id == Job.project_id)
        .join(Page, Page.id == JobPage.page_id)
        .where(*where)
        .order_by(JobPage.finished_at.desc())
        .limit(SHOWN_FAILURES)
    ).all()
    return count, [
        {
            "at": finished_at,
            "reason": reason or "no reason recorded",
            "page": number,
            "slug": slug,
            "job_id": job_id,
            "engine": engine,
        }
        for finished_at, reason, number, slug, job_id, engine in rows
    ]
