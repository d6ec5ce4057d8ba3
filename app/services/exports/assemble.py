"""The end of an export: its parts, in page order, become the file; the Export row records it;
the job ends.

The assembly is asked for by the page that finished last, and again by the watchdog and by
status reads until the job ends, so it must be idempotent and run once at a time:

- a job that has its Export row (a second run, after the first ended the job or died just
  before) only ends the job;
- a worker takes the assembly with a Redis claim that its heartbeat renews
  (JobTracker.claim_assembly); another run meanwhile does nothing, and a worker killed while
  assembling lets its claim lapse, so the next request assembles again from the parts, which
  stay on disk until the file is recorded.

The format streams the parts into the file (app/exports/), so assembling a 500-page book never
holds it in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.exports import FORMATS, ExportPart
from app.extensions import db
from app.job_tracking import JobTracker
from app.models import Export, ItemState, Job, JobKind, JobPage, JobState, Page
from app.services import jobs
from app.services.exports import files
from app.services.exports.page import export_meta, part_source
from app.services.exports.start import fingerprint
from app.services.jobs.heartbeat import stale_after

log = logging.getLogger(__name__)


def assemble_export(job_id: str, *, worker: str = "-") -> Export | None:
    """Make the export's file from its parts and end the job. Safe to run again."""
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    made = db.session.scalar(select(Export).filter_by(job_id=job_id))
    if made is not None or JobState(job.state).is_terminal:
        jobs.end_job(job_id)
        return made
    tracker = jobs.tracker(JobKind.EXPORT)
    interval = current_app.config["JOB_HEARTBEAT_SECONDS"]
    if not tracker.claim_assembly(job_id, worker, stale_after(interval)):
        log.info("export %s: already being assembled elsewhere", job_id)
        return None
    try:
        with _holding(tracker, job_id, worker, interval):
            return _assemble(job)
    finally:
        tracker.release_assembly(job_id, worker)


@contextlib.contextmanager
def _holding(tracker: JobTracker, job_id: str, worker: str, interval: float) -> Iterator[None]:
    """Renew the claim on the assembly every `interval` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not tracker.renew_assembly(job_id, worker, stale_after(interval)):
                    return
            except Exception:  # noqa: BLE001 -- a missed beat must not stop the assembly
                log.warning("export %s: assembly heartbeat failed", job_id)

    thread = threading.Thread(target=beat, name=f"assembly-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval)


def _fail(job: Job, message: str) -> None:
    log.warning("export %s failed: %s", job.id, message)
    jobs.end_job(job.id, state=JobState.FAILED, message=message)


def _assemble(job: Job) -> Export | None:
    failed = db.session.execute(
        select(Page.number, JobPage.reason)
        .join(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == job.id, JobPage.state == ItemState.FAILED)
        .order_by(JobPage.position)
        .limit(1)
    ).first()
    if failed is not None:
        _fail(job, f"Page {failed.number} could not be exported: {failed.reason}")
        return None
    options = job.options or {}
    fmt = FORMATS.get(options.get("format", ""))
    if fmt is None:
        _fail(job, f"The export format {options.get('format')!r} is not offered.")
        return None
    export = files.export_id(job)
    pages = db.session.execute(
        select(JobPage.page_id, Page.number)
        .join(Page, JobPage.page_id == Page.id)
        .filter(JobPage.job_id == export)
        .order_by(JobPage.position)
    ).all()
    if not pages:
        _fail(job, "The pages of the export are no longer on record.")
        return None
    missing = [
        number
        for page_id, number in pages
        if not (
            files.part_path(export, page_id).is_file()
            and files.part_source_path(export, page_id).is_file()
        )
    ]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (" …" if len(missing) > 10 else "")
        _fail(job, f"The parts of {len(missing)} pages ({shown}) are missing; resume the export.")
        return None
    parts = [ExportPart(number, files.part_path(export, page_id)) for page_id, number in pages]
    digest = fingerprint(
        fmt.name,
        options.get("min_status"),
        [part_source(export, page_id) for page_id, _number in pages],
    )
    out = files.export_dir(export) / files.file_name(job.project.slug, fmt)
    temporary = files.temporary_beside(out)
    try:
        fmt.assemble(parts, export_meta(job), temporary)
        os.replace(temporary, out)
    except Exception as exc:  # noqa: BLE001 -- any failure of a format is the export's reason
        temporary.unlink(missing_ok=True)
        log.exception("export %s: the file could not be assembled", job.id)
        _fail(job, f"The {fmt.label} file could not be assembled: {type(exc).__name__}: {exc}")
        return None
    row = Export(
        project_id=job.project_id,
        job_id=job.id,
        format=fmt.name,
        min_status=options.get("min_status"),
        fingerprint=digest,
        path=str(out.relative_to(files.data_dir())),
        size=out.stat().st_size,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # recorded by a run whose claim had lapsed: keep that one
        db.session.rollback()
        row = db.session.scalar(select(Export).filter_by(job_id=job.id))
    jobs.end_job(job.id)
    shutil.rmtree(files.parts_dir(export), ignore_errors=True)
    log.info("export %s: %s made (%d pages, %d bytes)", job.id, out.name, len(pages), row.size)
    return row
