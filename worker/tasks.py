"""Celery tasks: thin wrappers that take ids and call the plain functions in app/services.

Every task is idempotent (a redelivered or duplicated message changes nothing already done),
because `task_acks_late` redelivers the task of a worker that died mid-way, and a job's pages
may be sent again when their worker stops beating (app/services/jobs/).
"""

from __future__ import annotations

import os
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from flask import current_app

from app import task_names
from app.engines import TransientOcrError
from app.services import (
    batch_ocr,
    exports,
    jobs,
    page_reocr,
    projects,
    replace,
    retention,
    webhooks,
)

log = get_task_logger(__name__)

#: Transient engine errors (rate limits, 5xx, resets) are retried this many times.
MAX_TRANSIENT_RETRIES = 4


def worker_name(task) -> str:
    """Who runs a page: the Celery node and the pool process, as the page's heartbeat says."""
    return f"{task.request.hostname or 'local'}:{os.getpid()}"


@shared_task(name=task_names.SPLIT_SOURCE)
def split_source(*, project_id: int) -> None:
    projects.split_source(project_id)


@shared_task(name=task_names.RENDER_PAGES)
def render_pages(*, project_id: int, start: int, stop: int) -> None:
    projects.render_pages(project_id, start, stop)


@shared_task(bind=True, name=task_names.OCR_PAGE, max_retries=MAX_TRANSIENT_RETRIES)
def ocr_page(self, *, job_id: str, position: int, page_id: int | None = None) -> None:
    # page_id: sent by the previous release; the position names the page.
    worker = worker_name(self)
    try:
        batch_ocr.run_page(
            job_id,
            position,
            final_attempt=self.request.retries >= self.max_retries,
            worker=worker,
        )
    except TransientOcrError as exc:
        # Exponential backoff with full jitter, kept below the broker's visibility timeout.
        countdown = random.uniform(0, min(60, 2 ** (self.request.retries + 1)))
        log.warning("job %s page %d: %s; retrying in %.1f s", job_id, position, exc, countdown)
        batch_ocr.retry_page_later(job_id, position, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except SoftTimeLimitExceeded:
        batch_ocr.fail_page_over_time_limit(job_id, position, worker=worker)
    except Exception as exc:
        # A bug or a broken dependency must fail this page with a reason, never leave it
        # "running" until the watchdog gives it to another worker, again and again.
        log.exception("job %s page %d failed unexpectedly", job_id, position)
        reason = f"internal error: {type(exc).__name__}: {exc}"[:300]
        batch_ocr.fail_page(job_id, position, reason, worker=worker)


@shared_task(name=task_names.OCR_PAGE_PREVIEW)
def ocr_page_preview(*, page_id: int, token: str) -> None:
    try:
        page_reocr.run_reocr(page_id, token)
    except SoftTimeLimitExceeded:
        page_reocr.fail_reocr(page_id, token, "the OCR took longer than the page time limit")
    except Exception as exc:
        log.exception("re-OCR of page %d failed unexpectedly", page_id)
        page_reocr.fail_reocr(page_id, token, f"internal error: {type(exc).__name__}: {exc}"[:300])


@shared_task(bind=True, name=task_names.REPLACE_PAGE)
def replace_page(self, *, job_id: str, position: int) -> None:
    worker = worker_name(self)
    try:
        replace.run_replace_page(job_id, position, worker=worker)
    except Exception as exc:
        # As for OCR: a page that broke fails with a reason, and the job goes on.
        log.exception("job %s page %d failed unexpectedly", job_id, position)
        reason = f"internal error: {type(exc).__name__}: {exc}"[:300]
        replace.fail_replace_page(job_id, position, reason, worker=worker)


@shared_task(bind=True, name=task_names.EXPORT_PAGE)
def export_page(self, *, job_id: str, position: int) -> None:
    worker = worker_name(self)
    try:
        exports.run_page(job_id, position, worker=worker)
    except SoftTimeLimitExceeded:
        limit = current_app.config["OCR_PAGE_TIME_LIMIT"] + 5
        exports.fail_page(
            job_id, position, f"rendering took longer than the {limit} s limit", worker=worker
        )
    except Exception as exc:
        # As for OCR: a bug fails the page (and so the export) with a reason, never leaves it
        # "running" to be given to another worker again and again.
        log.exception("export %s page %d failed unexpectedly", job_id, position)
        reason = f"internal error: {type(exc).__name__}: {exc}"[:300]
        exports.fail_page(job_id, position, reason, worker=worker)


@shared_task(bind=True, name=task_names.ASSEMBLE_EXPORT)
def assemble_export(self, *, job_id: str) -> None:
    exports.assemble_export(job_id, worker=worker_name(self))


@shared_task(name=task_names.WATCH_JOBS)
def watch_jobs() -> None:
    presence = current_app.extensions["worker_presence"]
    presence.watch_started()
    ended = jobs.watch_jobs()
    if ended:
        log.warning("%d stalled jobs ended", ended)


@shared_task(
    bind=True,
    name=task_names.DELIVER_WEBHOOK,
    autoretry_for=(webhooks.WebhookRetry,),
    retry_backoff=webhooks.RETRY_BACKOFF,
    retry_backoff_max=webhooks.RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=webhooks.MAX_ATTEMPTS - 1,
    # A receiver that trickles its answer byte by byte stays under the socket timeout of each
    # read: the soft limit ends the attempt (recorded as failed, and retried) whatever it does.
    soft_time_limit=90,
    time_limit=120,
)
def deliver_webhook(self, *, delivery_id: int) -> None:
    webhooks.deliver(delivery_id, final_attempt=self.request.retries >= self.max_retries)


@shared_task(name=task_names.CLEAN_UP)
def clean_up() -> None:
    retention.clean_up()
