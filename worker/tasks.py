"""Celery tasks: thin wrappers that take ids and call the plain functions in app/services.

Every task is idempotent (a redelivered message changes nothing already done), because
`task_acks_late` redelivers the task of a worker that died mid-way.
"""

from __future__ import annotations

import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger

from app import task_names
from app.engines import TransientOcrError
from app.services import batch_ocr, projects, retention, webhooks

log = get_task_logger(__name__)

#: Transient engine errors (rate limits, 5xx, resets) are retried this many times.
MAX_TRANSIENT_RETRIES = 4


@shared_task(name=task_names.SPLIT_SOURCE)
def split_source(*, project_id: int) -> None:
    projects.split_source(project_id)


@shared_task(name=task_names.RENDER_PAGES)
def render_pages(*, project_id: int, start: int, stop: int) -> None:
    projects.render_pages(project_id, start, stop)


@shared_task(name=task_names.DISPATCH_OCR_JOB)
def dispatch_ocr_job(*, job_id: str) -> None:
    sent = batch_ocr.dispatch_job(job_id)
    log.info("job %s: %d page tasks sent", job_id, sent)


@shared_task(bind=True, name=task_names.OCR_PAGE, max_retries=MAX_TRANSIENT_RETRIES)
def ocr_page(self, *, job_id: str, position: int, page_id: int) -> None:
    try:
        batch_ocr.run_page(job_id, position, final_attempt=self.request.retries >= self.max_retries)
    except TransientOcrError as exc:
        # Exponential backoff with full jitter, kept below the broker's visibility timeout.
        countdown = random.uniform(0, min(60, 2 ** (self.request.retries + 1)))
        log.warning("job %s page %d: %s; retrying in %.1f s", job_id, position, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except SoftTimeLimitExceeded:
        batch_ocr.fail_page_over_time_limit(job_id, position)
    except Exception as exc:
        # A bug or a broken dependency must fail this page with a reason, never leave it
        # "running" until the stall watchdog gives up on the whole job.
        log.exception("job %s page %d failed unexpectedly", job_id, position)
        batch_ocr.fail_page(job_id, position, f"internal error: {type(exc).__name__}: {exc}"[:300])


@shared_task(name=task_names.WATCH_JOBS)
def watch_jobs() -> None:
    ended = batch_ocr.reap_stalled_jobs()
    if ended:
        log.warning("%d stalled OCR jobs ended", ended)


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
