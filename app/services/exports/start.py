"""Starting an export: which pages, in which format, and whether a kept file already holds it.

An export covers every page of the project, or only the pages at or above a proofreading level
(not-relevant pages are left out of such an export). It is a job of kind EXPORT
(app/services/jobs/): one page task per page, then one assembly (assemble.py).

One export runs per project at a time (its record is ``export_task:<slug>``): asking for the
export that is running joins it; asking for another is refused with the running one named, so
that the person can follow it and start theirs when it ends. An export of text that has not
changed since a kept file was made is that file: nothing runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select

from app import queue
from app.exports import FORMATS
from app.extensions import db
from app.models import (
    PAGE_STATUS_LADDER,
    Export,
    Job,
    JobKind,
    JobPage,
    JobState,
    Page,
    PageStatus,
    Project,
    ProjectStatus,
    User,
)
from app.services import jobs
from app.services.exports import files
from app.services.jobs.lifecycle import all_pages_finished, iso

#: What Job.selection says of an export of every page; a status-filtered export's selection
#: is its minimum status, a resumed one's RESUME.
EVERY_PAGE = "all"
RESUME = "resume"
#: The levels an export can ask for, lowest first: the ladder of app/models.py.
MIN_STATUSES = tuple(status.value for status in PAGE_STATUS_LADDER)
#: Jobs that ended without a file and can be resumed.
RESUMABLE = (JobState.INTERRUPTED, JobState.CANCELLED, JobState.FAILED)


class ExportError(jobs.JobError):
    """A user-facing reason an export cannot be started."""


class ExportBusy(ExportError):
    """Another export of the project is running; the message says which."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


@dataclass(frozen=True)
class ExportStart:
    """What asking for an export did."""

    #: The job making the file (started now, or joined), or the job that made the kept file.
    job_id: str
    #: True: a new job was started. False: a running job was joined, or `kept` is the file.
    started: bool
    #: The kept file that already holds this export; None when a job makes it.
    kept: Export | None = None


def selection_label(min_status: str | None) -> str:
    """What an export covers, in words: "every page", "pages at or above proofread once"."""
    if not min_status:
        return "every page"
    return f"pages at or above {PageStatus(min_status).label.lower()}"


def describe(format_name: str, min_status: str | None) -> str:
    fmt = FORMATS.get(format_name)
    return f"{fmt.label if fmt else format_name} of {selection_label(min_status)}"


def check_choice(format_name: str, min_status: str | None) -> str | None:
    """The minimum status as stored (None: every page), after checking both choices."""
    if format_name not in FORMATS:
        raise ExportError(
            f"Unknown export format {format_name!r}; choose one of {', '.join(FORMATS)}."
        )
    if not min_status or min_status == EVERY_PAGE:
        return None
    if min_status not in MIN_STATUSES:
        raise ExportError(
            f"Unknown page status {min_status!r}; choose one of {', '.join(MIN_STATUSES)}."
        )
    return min_status


def selected_pages(project: Project, min_status: str | None) -> list[tuple[int, int, str]]:
    """(id, version, status) of the pages an export covers, in book order."""
    rows = db.session.execute(
        select(Page.id, Page.version, Page.status)
        .filter_by(project_id=project.id)
        .order_by(Page.number)
    ).all()
    if min_status is None:
        return [tuple(row) for row in rows]
    floor = PageStatus(min_status).rank
    return [
        tuple(row)
        for row in rows
        if row.status in MIN_STATUSES and PageStatus(row.status).rank >= floor
    ]


def fingerprint(format_name: str, min_status: str | None, pages: list[tuple[int, int, str]]) -> str:
    """The digest of what an export holds: each page's id, version and status, in order,
    with the format and the minimum status."""
    digest = hashlib.sha256()
    digest.update(json.dumps([format_name, min_status or ""]).encode())
    for page_id, version, status in pages:
        digest.update(f"\n{page_id}:{version}:{status}".encode())
    return digest.hexdigest()


def kept_export(project: Project, format_name: str, min_status: str | None) -> Export | None:
    """The newest kept file of this export made from the pages as they are now, if any."""
    current = fingerprint(format_name, min_status, selected_pages(project, min_status))
    candidates = db.session.scalars(
        select(Export)
        .filter_by(project_id=project.id, format=format_name, fingerprint=current)
        .where(
            Export.min_status.is_(None) if min_status is None else Export.min_status == min_status
        )
        .order_by(Export.created_at.desc(), Export.id.desc())
    )
    for export in candidates:
        if (files.data_dir() / export.path).is_file():
            return export
    return None


def _is_running(job_id: str, format_name: str, min_status: str | None) -> bool:
    """Whether the running export `job_id` makes the file asked for."""
    job = db.session.get(Job, job_id)
    options = (job.options or {}) if job else {}
    return options.get("format") == format_name and options.get("min_status") == min_status


def _join_or_refuse(project: Project, job_id: str, format_name: str, min_status: str | None):
    """The running export `job_id`: joined if it is the one asked for, else ExportBusy."""
    job = db.session.get(Job, job_id)
    if job is not None:
        running_format, running_min = (
            (job.options or {}).get("format", ""),
            (job.options or {}).get("min_status"),
        )
    else:  # claimed by a start not yet committed: only its record says what it makes
        record = jobs.tracker(JobKind.EXPORT).current(project.slug)
        running_format, running_min = (record.format if record else ""), min_status
    if running_format == format_name and running_min == min_status:
        return ExportStart(job_id=job_id, started=False)
    started = iso(job.started_at)[:16].replace("T", " ") + " UTC" if job else "just now"
    who = f" by {job.started_by.username}" if job and job.started_by else ""
    raise ExportBusy(
        f"An export ({describe(running_format, running_min)}) started {started}{who} is "
        "running; one export runs per project at a time. Follow it, or wait for it to end "
        "and then start yours.",
        job_id,
    )


@queue.needs_redis
def start_export(
    project: Project, *, format_name: str, min_status: str | None, user: User | None
) -> ExportStart:
    """Start the export asked for, join it if it is running, or name the kept file that
    already holds it. Raises ExportBusy if a different export of the project is running."""
    min_status = check_choice(format_name, min_status)
    running = jobs.current_job(project, JobKind.EXPORT)
    if running is None or not _is_running(running.task_id, format_name, min_status):
        # A kept file needs no job: it is served even while another export runs.
        kept = kept_export(project, format_name, min_status)
        if kept is not None:
            return ExportStart(job_id=kept.job_id, started=False, kept=kept)
    if running is not None:
        return _join_or_refuse(project, running.task_id, format_name, min_status)
    if project.status != ProjectStatus.READY:
        raise ExportError("The project's pages are not ready yet; wait for the split to end.")
    pages = selected_pages(project, min_status)
    if not pages:
        raise ExportError(
            f"No page is at or above {PageStatus(min_status).label.lower()} yet: there is "
            "nothing to export."
            if min_status
            else "The project has no pages: there is nothing to export."
        )
    outcome = jobs.start_job(
        project,
        JobKind.EXPORT,
        page_ids=[page_id for page_id, _version, _status in pages],
        selection=min_status or EVERY_PAGE,
        user=user,
        options={"format": format_name, "min_status": min_status},
    )
    if not outcome.started:  # another request started one a moment ago
        return _join_or_refuse(project, outcome.job_id, format_name, min_status)
    return ExportStart(job_id=outcome.job_id, started=True)


def resumable_job(project: Project) -> Job | None:
    """The project's last export, if it ended without its file and can be resumed."""
    last = jobs.latest_job(project, JobKind.EXPORT)
    if last is None or last.state not in RESUMABLE:
        return None
    if db.session.scalar(select(Export.id).filter_by(job_id=last.id)) is not None:
        return None
    return last


@queue.needs_redis
def resume_export(project: Project, *, user: User | None) -> ExportStart:
    """Make the pages of the last export that have no part on disk, then its file. The parts
    already made are used as they are."""
    running = jobs.current_job(project, JobKind.EXPORT)
    if running is not None:
        job = db.session.get(Job, running.task_id)
        options = (job.options or {}) if job else {}
        return _join_or_refuse(
            project, running.task_id, options.get("format", ""), options.get("min_status")
        )
    last = resumable_job(project)
    if last is None:
        raise ExportError("There is no interrupted, cancelled or failed export to resume.")
    export = files.export_id(last)
    page_ids = list(
        db.session.scalars(
            select(JobPage.page_id)
            .filter_by(job_id=export)
            .where(JobPage.page_id.is_not(None))
            .order_by(JobPage.position)
        )
    )
    if not page_ids:
        raise ExportError("That export is too old to resume (its pages are no longer on record).")
    missing = [
        page_id
        for page_id in page_ids
        if not (
            files.part_path(export, page_id).is_file()
            and files.part_source_path(export, page_id).is_file()
        )
    ]
    options = dict(last.options or {})
    options["export_of"] = export
    outcome = jobs.start_job(
        project, JobKind.EXPORT, page_ids=missing, selection=RESUME, user=user, options=options
    )
    if not outcome.started:
        return _join_or_refuse(
            project, outcome.job_id, options.get("format", ""), options.get("min_status")
        )
    if not missing:
        # Every part is on disk (the export was cut off while assembling): assemble now.
        all_pages_finished(db.session.get(Job, outcome.job_id))
    return ExportStart(job_id=outcome.job_id, started=True)
