"""What the export page, its JSON status and the CLI show of exports: the running or last job,
the kept files, and a kept file's download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from app.exports import FORMATS
from app.extensions import db
from app.models import Export, Job, JobKind, Project
from app.services import jobs
from app.services.exports import files
from app.services.exports.start import describe, fingerprint, selected_pages


def job_status(project: Project) -> jobs.JobStatus:
    """The project's running export, else its last one, else jobs.NO_JOB."""
    return jobs.job_status(project, JobKind.EXPORT)


def export_of(job_id: str | None) -> Export | None:
    """The file a job made, if it is still kept."""
    if not job_id:
        return None
    return db.session.scalar(select(Export).filter_by(job_id=job_id))


def min_status_of(job_id: str | None) -> str | None:
    """The minimum status an export job was asked for (None: every page)."""
    job = db.session.get(Job, job_id) if job_id else None
    return (job.options or {}).get("min_status") if job else None


@dataclass(frozen=True)
class KeptExport:
    export: Export
    #: What it holds, in words: "Plain text (one file) of every page".
    description: str
    download_name: str
    #: Whether it holds the pages as they are now (else a page changed since).
    current: bool


def kept_exports(project: Project) -> list[KeptExport]:
    """The project's kept files, newest first, each with whether it is still up to date."""
    rows = db.session.scalars(
        select(Export)
        .filter_by(project_id=project.id)
        .order_by(Export.created_at.desc(), Export.id.desc())
    ).all()
    now: dict[tuple[str, str | None], str] = {}
    kept = []
    for export in rows:
        if not (files.data_dir() / export.path).is_file():
            continue
        choice = (export.format, export.min_status)
        if choice not in now:
            now[choice] = fingerprint(*choice, selected_pages(project, export.min_status))
        kept.append(
            KeptExport(
                export=export,
                description=describe(export.format, export.min_status),
                download_name=files.download_name(project.slug, export.format, export.path),
                current=now[choice] == export.fingerprint,
            )
        )
    return kept


@dataclass(frozen=True)
class Download:
    path: Path
    name: str
    content_type: str


def download(project: Project, export_id: int) -> Download | None:
    """A kept file of the project, as it is served; None if there is no such file."""
    export = db.session.get(Export, export_id)
    if export is None or export.project_id != project.id:
        return None
    data_dir = files.data_dir().resolve()
    path = (data_dir / export.path).resolve()
    if not path.is_relative_to(data_dir) or not path.is_file():
        return None
    return Download(
        path=path,
        name=files.download_name(project.slug, export.format, export.path),
        content_type=files.content_type(export.format),
    )


def format_choices() -> list[dict[str, str]]:
    return [{"name": fmt.name, "label": fmt.label} for fmt in FORMATS.values()]
