"""One page of an export: the work `run_item` (app/services/jobs/items.py) calls.

The page's latest text, word boxes, status and scan are rendered by the export's format into a
part on disk (files.py), with a note of the version it was made from; then the page is done.
Rendering again gives the same part, so a redelivered task changes nothing. A page that cannot
be rendered fails the whole export at once, with the page and the reason: a book with a page
missing is not the file anyone asked for.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.exports import FORMATS, ExportMeta, ExportPage
from app.extensions import db
from app.models import ItemState, Job, JobKind, JobPage, JobState, Page, utcnow
from app.services import jobs
from app.services.exports import files
from app.services.jobs.items import PageOutcome, fail_item, run_item

log = logging.getLogger(__name__)


def run_page(job_id: str, position: int, *, worker: str = "") -> PageOutcome:
    """Render one page of an export into its part. Idempotent."""
    outcome = run_item(job_id, position, _export_work, worker=worker or "-")
    if outcome.outcome == ItemState.FAILED:
        _fail_export(job_id, position, outcome.reason)
    return outcome


def fail_page(job_id: str, position: int, reason: str, *, worker: str | None = None) -> None:
    """A page whose task broke off (time limit, unexpected error) fails the export."""
    fail_item(job_id, position, reason, worker=worker)
    _fail_export(job_id, position, reason)


def _fail_export(job_id: str, position: int, reason: str) -> None:
    job = db.session.get(Job, job_id)
    if job is None or JobState(job.state).is_terminal:
        return
    job_page = db.session.get(JobPage, (job_id, position))
    number = job_page.page.number if job_page and job_page.page else position + 1
    record = jobs.tracker(JobKind.EXPORT).current(job.project.slug)
    if record is None or record.task_id != job_id:
        return
    try:
        jobs.stop_job(
            job.project,
            JobKind.EXPORT,
            JobState.FAILED,
            f"Page {number} could not be exported: {reason}",
        )
    except jobs.JobError:
        pass  # ended meanwhile (its assembly, which fails it for the same page)


def export_meta(job: Job) -> ExportMeta:
    """The project as every part of one export sees it (one time for the whole file)."""
    project = job.project
    first = db.session.get(Job, files.export_id(job)) or job
    return ExportMeta(
        title=project.title,
        slug=project.slug,
        source_filename=project.source_filename,
        languages=tuple(code for code in project.language.split("+") if code),
        exported_at=first.started_at,
    )


def export_page(page: Page, language: str) -> ExportPage:
    image = files.data_dir() / page.image_path if page.image_path else None
    return ExportPage(
        number=page.number,
        text=page.text or "",
        boxes=page.ocr_boxes,
        status=page.status,
        image_path=image.resolve() if image is not None and image.is_file() else None,
        width=page.width,
        height=page.height,
        dpi=page.dpi,
        language=language,
    )


def _export_work(job: Job, job_page: JobPage) -> PageOutcome:
    page = job_page.page
    if page is None:
        return PageOutcome(ItemState.FAILED, "the page no longer exists")
    format_name = (job.options or {}).get("format", "")
    fmt = FORMATS.get(format_name)
    if fmt is None:
        return PageOutcome(ItemState.FAILED, f"the export format {format_name!r} is not offered")
    # The version and status read with the text: the note says what the part holds.
    source = {"id": page.id, "version": page.version, "status": page.status}
    try:
        data = fmt.render_part(export_page(page, job.project.language), export_meta(job))
    except Exception as exc:  # noqa: BLE001 -- any failure of a format is this page's reason
        log.exception("export %s: page %d could not be rendered", job.id, page.number)
        return PageOutcome(ItemState.FAILED, f"{fmt.label}: {type(exc).__name__}: {exc}"[:300])
    export = files.export_id(job)
    files.write_atomically(files.part_path(export, page.id), data)
    files.write_atomically(files.part_source_path(export, page.id), json.dumps(source).encode())
    job_page.state = ItemState.DONE
    job_page.finished_at = utcnow()
    db.session.commit()
    return PageOutcome(ItemState.DONE)


def part_source(export: str, page_id: int) -> tuple[int, int, str]:
    """(id, version, status) of the page as its part was made."""
    source = json.loads(Path(files.part_source_path(export, page_id)).read_bytes())
    return (source["id"], source["version"], source["status"])
