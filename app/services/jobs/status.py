"""What a job looks like to the people waiting on it: `JobStatus`, the one shape that the
status JSON, the progress pages, the CLI and the API all show.

While a job runs its status is read from Redis only (one round trip for the record, one for
its pages and counters, whatever the page count); once it has ended, from the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from app import task_names
from app.extensions import db
from app.job_tracking import JobProgress, JobRecord
from app.models import LIVE_JOB_STATES, ItemState, Job, JobKind, JobPage, JobState, Page
from app.services.jobs.kinds import JOB_TYPES, presence
from app.services.jobs.lifecycle import iso

#: The page states counted in a status, in the order they are shown.
COUNTED_STATES = tuple(ItemState)
#: Pages not finished yet.
UNFINISHED = (ItemState.PREPARING, ItemState.QUEUED, ItemState.RUNNING)


@dataclass(frozen=True)
class JobStatus:
    """A job as shown: its state, counts, progress and every page's state."""

    #: A JobState value, or "none" when the project has had no such job.
    state: str
    kind: str = JobKind.OCR.value
    #: The project's slug.
    project: str | None = None
    task_id: str | None = None
    engine: str | None = None
    language: str | None = None
    format: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    started_by: str | None = None
    total: int = 0
    preparing: int = 0
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    #: Whole percent of the pages finished; 100 only when every page has.
    percent: int = 0
    eta_seconds: int | None = None
    #: Something the people waiting should know: no worker takes the job's pages.
    warning: str | None = None
    #: Why the job ended as it did, when the counts do not say (interrupted).
    message: str | None = None
    #: One entry per page in job order: {"number", "state", "reason"?}.
    pages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_JOB_STATES

    @property
    def finished(self) -> int:
        return self.total - self.preparing - self.queued - self.running

    def to_dict(self) -> dict[str, Any]:
        # Shallow: dataclasses.asdict would deep-copy every page entry, and was most of the
        # cost of a 500-page poll. The entries are shared, so never mutate them.
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(JobStatus))
NO_JOB = JobStatus(state="none")


def _page_numbers(job_id: str) -> dict[int, int]:
    """Page number of each position of a job whose pages all exist; fixed for the job's life,
    so cached."""
    return _cached_page_numbers(job_id)


@lru_cache(maxsize=256)
def _cached_page_numbers(job_id: str) -> dict[int, int]:
    return _read_page_numbers(job_id)


def _read_page_numbers(job_id: str) -> dict[int, int]:
    return dict(
        db.session.execute(
            select(JobPage.position, Page.number)
            .join(Page, JobPage.page_id == Page.id)
            .filter(JobPage.job_id == job_id)
        ).all()
    )


def _number(numbers: dict[int, int], position: int) -> int:
    # A page not rendered yet belongs to a job started with its upload, whose positions are
    # the book's pages in order.
    return numbers.get(position, position + 1)


#: The per-page part of each running job's last status, in this process: a job's pages change
#: state a few times a second at most while many users poll it, and building one entry per
#: page was most of the cost of a 2000-page poll (docs/profiling.md). An entry is reused only
#: while the page states and reasons read from Redis are byte for byte the same.
_LIVE_PAGES: OrderedDict[str, tuple[tuple, dict[str, int], list[dict[str, Any]]]] = OrderedDict()
_LIVE_PAGES_JOBS = 64
_LIVE_PAGES_LOCK = threading.Lock()


def _live_pages(
    record: JobRecord, progress: JobProgress
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Counts by state and the per-page entries of a running job (shared: never mutate)."""
    key = (progress.states_raw, tuple(sorted(progress.errors.items())))
    with _LIVE_PAGES_LOCK:
        cached = _LIVE_PAGES.get(record.task_id)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    states = progress.page_states
    counts = dict.fromkeys((state.value for state in COUNTED_STATES), 0)
    for state in states:
        counts[state] += 1
    # While pages are being prepared their numbers are still being recorded: read, not cached.
    preparing = counts[ItemState.PREPARING]
    numbers = _read_page_numbers(record.task_id) if preparing else _page_numbers(record.task_id)
    pages = [
        {
            "number": _number(numbers, i),
            "state": state.value,
            **({"reason": progress.errors[i]} if i in progress.errors else {}),
        }
        for i, state in enumerate(states)
    ]
    with _LIVE_PAGES_LOCK:
        _LIVE_PAGES[record.task_id] = (key, counts, pages)
        _LIVE_PAGES.move_to_end(record.task_id)
        while len(_LIVE_PAGES) > _LIVE_PAGES_JOBS:
            _LIVE_PAGES.popitem(last=False)
    return counts, pages


def live_status(
    kind: JobKind, record: JobRecord, progress: JobProgress, started_by: str | None = None
) -> JobStatus:
    counts, pages = _live_pages(record, progress)
    unfinished = sum(counts[state] for state in UNFINISHED)
    finished = record.total - unfinished
    eta = None
    if progress.first_started and finished:
        elapsed = max(time.time() - progress.first_started, 0.001)
        # Never "0 s left" while pages remain: a page still running takes some time.
        eta = max(1, round(unfinished * elapsed / finished)) if unfinished else None
    return JobStatus(
        state=JobState.RUNNING if progress.first_started else JobState.QUEUED,
        kind=JobKind(kind).value,
        project=record.project_slug,
        task_id=record.task_id,
        engine=record.engine or None,
        language=record.language or None,
        format=record.format or None,
        started_at=record.started_at,
        started_by=started_by,
        total=record.total,
        **counts,
        percent=percent(finished, record.total),
        eta_seconds=eta,
        warning=_worker_warning(kind, counts),
        pages=pages,
    )


def _worker_warning(kind: JobKind, counts: dict[str, int]) -> str | None:
    """Why waiting pages may wait for ever: no live worker takes their queue."""
    waiting = []
    if counts[ItemState.QUEUED]:
        waiting.append(JOB_TYPES[JobKind(kind)].queue)
    if counts[ItemState.PREPARING]:
        waiting.append(task_names.INTERACTIVE_QUEUE)  # where the split of an upload runs
    missing = [queue for queue in waiting if presence().consumers(queue) == 0]
    if not missing:
        return None
    names = " and ".join(f"'{queue}'" for queue in missing)
    return (
        f"No running worker takes tasks from the {names} queue{'s' if len(missing) > 1 else ''}: "
        "pages wait until one starts (`celery -A worker worker` takes every queue)."
    )


def ended_status(job: Job) -> JobStatus:
    rows = db.session.execute(
        select(JobPage.position, JobPage.state, JobPage.reason, Page.number)
        .outerjoin(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == job.id)
        .order_by(JobPage.position)
    ).all()
    counts = dict.fromkeys((state.value for state in COUNTED_STATES), 0)
    pages = []
    for position, state, reason, number in rows:
        counts[state] = counts.get(state, 0) + 1
        entry = {"number": number or position + 1, "state": state}
        if reason:
            entry["reason"] = reason
        pages.append(entry)
    finished = job.total - counts[ItemState.QUEUED] - counts[ItemState.PREPARING]
    options = job.options or {}
    return JobStatus(
        state=job.state,
        kind=job.kind,
        project=job.project.slug,
        task_id=job.id,
        engine=job.engine,
        language=job.language,
        format=options.get("format"),
        started_at=iso(job.started_at),
        finished_at=iso(job.finished_at),
        started_by=job.started_by.username if job.started_by else None,
        total=job.total,
        **counts,
        percent=percent(finished, job.total),
        message=job.message,
        pages=pages,
    )


def percent(finished: int, total: int) -> int:
    """Whole percent finished, 0-100; 100 only when every page has finished."""
    if total <= 0:
        return 100
    return 100 if finished >= total else min(99, finished * 100 // total)
