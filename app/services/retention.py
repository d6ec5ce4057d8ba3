"""What is kept, and for how long: the clean-up that removes what has outlived its use.

Three things grow without end otherwise:

- staged uploads: the `.incoming-*` directories of uploads whose process died before the
  project was recorded (an upload removes those older than a day as it starts, and so does the
  clean-up, for a server nobody uploads to);
- export files, kept EXPORT_RETENTION_HOURS after they were made (their Export row goes with
  them; the export's Job row stays, as every job's does), and the parts that exports which
  never made their file (failed, interrupted, cancelled) keep for a resume, once that export
  ended EXPORT_RETENTION_HOURS ago (app/services/exports/files.py says where they are);
- the per-page outcomes (JobPage rows) of jobs that ended more than JOB_PAGE_RETENTION_DAYS
  ago. The Job row, with its state and counts, stays for good, and so do the revisions a job
  wrote; only "which page ended how" goes.

`clean_up` runs from beat (CLEAN_UP) and from `flask cleanup [--dry-run]`. Every removal is
logged; a dry run returns the same list and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import Export, Job, JobKind, JobPage, utcnow
from app.services.exports.files import export_id

log = logging.getLogger(__name__)

#: A staging directory this old belongs to an upload whose process died: no upload takes a day.
STALE_STAGING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Removal:
    """One thing the clean-up removes (or, in a dry run, would remove)."""

    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


def _report(removal: Removal, dry_run: bool) -> Removal:
    log.info("%s %s", "would remove" if dry_run else "removed", removal)
    return removal


def remove_stale_staging(
    projects_dir: Path, *, dry_run: bool = False, now: float | None = None
) -> list[Removal]:
    """Remove what uploads cut off by a crash left behind (their staging directories)."""
    cutoff = (time.time() if now is None else now) - STALE_STAGING_SECONDS
    removed = []
    for stale in sorted(projects_dir.glob(".incoming-*")):
        with contextlib.suppress(OSError):  # another upload may be removing it too
            if stale.stat().st_mtime >= cutoff:
                continue
            if not dry_run:
                shutil.rmtree(stale)
            removed.append(
                _report(Removal("staged upload", f"{stale.name}, left by an upload"), dry_run)
            )
    return removed


def remove_expired_exports(*, dry_run: bool = False, now: datetime | None = None) -> list[Removal]:
    """Remove export files (and their Export rows) older than EXPORT_RETENTION_HOURS."""
    config = current_app.config
    cutoff = (now or utcnow()) - timedelta(hours=config["EXPORT_RETENTION_HOURS"])
    data_dir = Path(config["DATA_DIR"]).resolve()
    removed = []
    expired = db.session.scalars(
        select(Export).where(Export.created_at < cutoff).order_by(Export.id)
    ).all()
    for export in expired:
        path = (data_dir / export.path).resolve()
        if not dry_run:
            # A path outside the data directory is never removed, whatever the row says.
            if path.is_relative_to(data_dir):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                with contextlib.suppress(OSError):  # its export's directory, once empty
                    if path.parent.parent == data_dir / "exports":
                        path.parent.rmdir()
            db.session.delete(export)
            db.session.commit()
        made = export.created_at.isoformat(timespec="minutes")
        removed.append(
            _report(
                Removal("export", f"{export.path} ({export.format}, {export.size} bytes, {made})"),
                dry_run,
            )
        )
    return removed


def remove_stale_export_parts(
    *, dry_run: bool = False, now: datetime | None = None
) -> list[Removal]:
    """Remove the directories of exports that have no kept file and whose job ended (or that
    no job names any more) more than EXPORT_RETENTION_HOURS ago: parts kept for a resume
    nobody asked for. A live export's directory is never touched."""
    root = Path(current_app.config["DATA_DIR"]) / "exports"
    if not root.is_dir():
        return []
    cutoff = (now or utcnow()) - timedelta(hours=current_app.config["EXPORT_RETENTION_HOURS"])
    kept = {Path(path).parts[1] for path in db.session.scalars(select(Export.path)) if path}
    # An export is resumable while its last job (the first, or a resume) ended recently.
    recent = db.session.scalars(
        select(Job).where(
            Job.kind == JobKind.EXPORT,
            (Job.finished_at.is_(None)) | (Job.finished_at >= cutoff),
        )
    )
    kept |= {export_id(job) for job in recent}
    removed = []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir() or directory.name in kept:
            continue
        job = db.session.get(Job, directory.name)
        if job is None and datetime.fromtimestamp(directory.stat().st_mtime) >= cutoff:
            continue  # no job: a start being recorded, or a resumed export's own directory
        if not dry_run:
            shutil.rmtree(directory, ignore_errors=True)
        removed.append(_report(Removal("export parts", f"exports/{directory.name}"), dry_run))
    return removed


def remove_old_job_pages(*, dry_run: bool = False, now: datetime | None = None) -> list[Removal]:
    """Remove the per-page rows of jobs that ended more than JOB_PAGE_RETENTION_DAYS ago."""
    days = current_app.config["JOB_PAGE_RETENTION_DAYS"]
    cutoff = (now or utcnow()) - timedelta(days=days)
    old_jobs = db.session.execute(
        select(Job.id, Job.finished_at, func.count(JobPage.position))
        .join(JobPage, JobPage.job_id == Job.id)
        .where(Job.finished_at.is_not(None), Job.finished_at < cutoff)
        .group_by(Job.id, Job.finished_at)
        .order_by(Job.finished_at)
    ).all()
    removed = []
    for job_id, finished_at, pages in old_jobs:
        if not dry_run:
            # One job per transaction: a big backlog never holds a long write lock.
            db.session.execute(delete(JobPage).where(JobPage.job_id == job_id))
            db.session.commit()
        ended = finished_at.isoformat(timespec="minutes")
        removed.append(
            _report(Removal("job pages", f"{pages} of job {job_id} (ended {ended})"), dry_run)
        )
    return removed


def clean_up(*, dry_run: bool = False) -> list[Removal]:
    """Everything above, in one pass; returns what was (or would be) removed."""
    projects_dir = Path(current_app.config["DATA_DIR"]) / "projects"
    removed = [
        *remove_stale_staging(projects_dir, dry_run=dry_run),
        *remove_expired_exports(dry_run=dry_run),
        *remove_stale_export_parts(dry_run=dry_run),
        *remove_old_job_pages(dry_run=dry_run),
    ]
    log.info("clean-up%s: %d removals", " (dry run)" if dry_run else "", len(removed))
    return removed
