"""Batch OCR of a project, by concern: start.py (which pages, which engine, with an upload),
page.py (one page), lifecycle.py (cancel, the watchdog), status.py (what people see).

A batch OCR job is a job of kind OCR (app/services/jobs/): tracked under ``ocr_task:<slug>``
(docs/batch-ocr-task-tracking.md), one `ocr_page` task per page, a few pages sent at a time.
"""

from __future__ import annotations

from app.services.batch_ocr.lifecycle import (
    cancel_batch_ocr,
    check_running_job,
    current_job,
    end_job,
    watch_jobs,
)
from app.services.batch_ocr.page import (
    fail_page,
    fail_page_over_time_limit,
    retry_page_later,
    run_page,
    save_revision,
)
from app.services.batch_ocr.start import (
    RESUME,
    SELECTIONS,
    UPLOAD,
    BatchOcrError,
    check_engine,
    create_project_with_ocr,
    engine_choices,
    page_rendered,
    split_failed,
    start_batch_ocr,
    start_with_upload,
    waits_for_pages,
)
from app.services.batch_ocr.status import job_status, latest_job_summary
from app.services.jobs import StartOutcome
from app.services.jobs.items import PageOutcome

__all__ = [
    "RESUME",
    "SELECTIONS",
    "UPLOAD",
    "BatchOcrError",
    "PageOutcome",
    "StartOutcome",
    "cancel_batch_ocr",
    "check_engine",
    "check_running_job",
    "create_project_with_ocr",
    "current_job",
    "engine_choices",
    "end_job",
    "fail_page",
    "fail_page_over_time_limit",
    "job_status",
    "latest_job_summary",
    "page_rendered",
    "retry_page_later",
    "run_page",
    "save_revision",
    "split_failed",
    "start_batch_ocr",
    "start_with_upload",
    "waits_for_pages",
    "watch_jobs",
]
