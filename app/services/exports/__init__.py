"""Exports of a project as tracked background jobs, by concern: start.py (which pages, which
format, joining a running export, reusing a kept file, resuming), page.py (one page's part),
assemble.py (the file, its Export row, the end of the job), status.py (what people see),
files.py (where parts and files live, and their names).

An export is a job of kind EXPORT (app/services/jobs/), tracked under ``export_task:<slug>``,
one `export_page` task per page, then one `assemble_export`. How a page and a file are written
is the format's business (app/exports/); nothing here knows one format from another.
"""

from __future__ import annotations

from app.services.exports.assemble import assemble_export
from app.services.exports.page import fail_page, run_page
from app.services.exports.start import (
    EVERY_PAGE,
    MIN_STATUSES,
    RESUME,
    ExportBusy,
    ExportError,
    ExportStart,
    check_choice,
    describe,
    fingerprint,
    kept_export,
    resumable_job,
    resume_export,
    selected_pages,
    selection_label,
    start_export,
)
from app.services.exports.status import (
    Download,
    KeptExport,
    download,
    export_of,
    format_choices,
    job_status,
    kept_exports,
    min_status_of,
)

__all__ = [
    "EVERY_PAGE",
    "MIN_STATUSES",
    "RESUME",
    "Download",
    "ExportBusy",
    "ExportError",
    "ExportStart",
    "KeptExport",
    "assemble_export",
    "check_choice",
    "describe",
    "download",
    "export_of",
    "fail_page",
    "fingerprint",
    "format_choices",
    "job_status",
    "kept_export",
    "kept_exports",
    "min_status_of",
    "resumable_job",
    "resume_export",
    "run_page",
    "selected_pages",
    "selection_label",
    "start_export",
]
