"""'OCR this page again' from the editor: one page recognised at interactive priority, its text
offered as a diff against what is in the box, to accept or discard.

The result never touches the page: it is kept in Redis for RESULT_TTL seconds under a key of
its own request (a random token), so two proofreaders asking for the same page each get their
own, and nothing a proofreader typed is ever overwritten. Only the editor's Accept puts the text
in the box, and only the proofreader's Save stores it.

Redis keys (this module is the one place they are spelt):
- ``page_reocr:<page id>:<token>``: JSON ``{"state": "queued"|"done"|"failed", "requested_at",
  "engine", "language", "text"?, "error"?, "finished_at"?}``, TTL RESULT_TTL, set when asked
  for and replaced by the worker's outcome with the same TTL.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from app import queue, task_names
from app.engines import OcrError, get_engine
from app.extensions import db
from app.models import Job, JobKind, Page
from app.queue import QueueUnavailable, needs_redis
from app.services.batch_ocr.start import BatchOcrError, check_engine
from app.services.jobs.kinds import presence
from app.text.diff import changed_words, diff_html

#: Seconds a result is kept: long enough to read the diff after a break, short enough that
#: forgotten results do not pile up.
RESULT_TTL = 3600
#: The engine used when the project has never been OCR'd by a job.
DEFAULT_ENGINE = "tesseract"
QUEUED, DONE, FAILED = "queued", "done", "failed"


class ReocrError(ValueError):
    """A user-facing reason the page cannot be OCR'd again now."""


def result_key(page_id: int, token: str) -> str:
    return f"page_reocr:{page_id}:{token}"


def _redis():
    return current_app.extensions["redis"]


def project_engine(page: Page) -> str:
    """The engine of the project's latest OCR job: the page is read again as the book was."""
    engine = db.session.scalar(
        select(Job.engine)
        .filter(Job.project_id == page.project_id, Job.kind == JobKind.OCR)
        .order_by(Job.started_at.desc())
        .limit(1)
    )
    return engine or DEFAULT_ENGINE


def worker_warning() -> str | None:
    """Why the request may wait for ever: no live worker takes the interactive queue."""
    if presence().consumers(task_names.INTERACTIVE_QUEUE):
        return None
    return (
        f"No running worker takes tasks from the '{task_names.INTERACTIVE_QUEUE}' queue: the "
        "page is OCR'd when one starts (`celery -A worker worker` takes every queue)."
    )


@needs_redis
def request_reocr(page: Page) -> tuple[str, str | None]:
    """Ask for the page to be OCR'd again; returns the request's token and a worker warning.

    Raises ReocrError (engine unusable) or QueueUnavailable (Redis down).
    """
    engine = project_engine(page)
    language = page.project.language
    try:
        check_engine(engine, language)
    except BatchOcrError as exc:
        raise ReocrError(str(exc)) from None
    token = secrets.token_urlsafe(12)
    record = {"state": QUEUED, "requested_at": time.time(), "engine": engine, "language": language}
    _redis().set(result_key(page.id, token), json.dumps(record), ex=RESULT_TTL)
    queue.enqueue(
        task_names.OCR_PAGE_PREVIEW,
        queue=task_names.INTERACTIVE_QUEUE,
        page_id=page.id,
        token=token,
    )
    return token, worker_warning()


def run_reocr(page_id: int, token: str) -> None:
    """The worker's part: recognise the page and keep the outcome under the request's key.

    Idempotent: a redelivered task recognises again and writes the same kind of record. A
    request that has expired or was discarded is not run (nobody is waiting for it).
    """
    key = result_key(page_id, token)
    raw = _redis().get(key)
    if raw is None:
        return
    record = json.loads(raw)
    page = db.session.get(Page, page_id)
    _finish(key, record, _recognize(page, record["engine"], record["language"]))


def fail_reocr(page_id: int, token: str, reason: str) -> None:
    """End the request as failed (the task ran out of time or broke), so the editor stops
    waiting and says why."""
    key = result_key(page_id, token)
    raw = _redis().get(key)
    if raw is not None:
        _finish(key, json.loads(raw), {"state": FAILED, "error": reason})


def _finish(key: str, record: dict[str, Any], outcome: dict[str, Any]) -> None:
    record.update(outcome, finished_at=time.time())
    # XX: only if the request is still there (discarded while it ran: stay discarded).
    _redis().set(key, json.dumps(record), ex=RESULT_TTL, xx=True)


def _recognize(page: Page | None, engine_name: str, language: str) -> dict[str, Any]:
    if page is None:
        return {"state": FAILED, "error": "the page no longer exists"}
    engine = get_engine(engine_name)
    if engine is None:
        return {"state": FAILED, "error": f"unknown engine {engine_name!r}"}
    config = current_app.config
    image = Path(config["DATA_DIR"]) / page.image_path
    if not image.is_file():
        return {"state": FAILED, "error": "the page image is missing from the data directory"}
    try:
        result = engine.recognize(image, language, config, timeout=config["OCR_PAGE_TIME_LIMIT"])
    except OcrError as exc:
        return {"state": FAILED, "error": str(exc)}
    return {"state": DONE, "text": result.text}


@dataclass(frozen=True)
class ReocrResult:
    #: QUEUED, DONE or FAILED; "expired" when the record is gone (TTL or discarded).
    state: str
    text: str = ""
    error: str = ""
    diff: str = ""
    deleted: int = 0
    inserted: int = 0
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "text": self.text,
            "error": self.error,
            "diff": self.diff,
            "deleted": self.deleted,
            "inserted": self.inserted,
            "warning": self.warning,
        }


@needs_redis
def reocr_result(page: Page, token: str, current_text: str) -> ReocrResult:
    """Where the request stands; when done, the diff from `current_text` (the box's text
    now) to the new OCR text. Raises QueueUnavailable when Redis is down."""
    raw = _redis().get(result_key(page.id, token))
    if raw is None:
        return ReocrResult("expired", error="This OCR result has expired or was discarded.")
    record = json.loads(raw)
    if record["state"] == QUEUED:
        return ReocrResult(QUEUED, warning=worker_warning())
    if record["state"] == FAILED:
        return ReocrResult(FAILED, error=record.get("error", "the OCR failed"))
    text = record.get("text", "")
    current_text = current_text.replace("\r\n", "\n")
    deleted, inserted = changed_words(current_text, text)
    return ReocrResult(
        DONE,
        text=text,
        diff=str(diff_html(current_text, text)),
        deleted=deleted,
        inserted=inserted,
    )


@needs_redis
def discard_result(page: Page, token: str) -> None:
    _redis().delete(result_key(page.id, token))


__all__ = [
    "RESULT_TTL",
    "QueueUnavailable",
    "ReocrError",
    "ReocrResult",
    "discard_result",
    "reocr_result",
    "request_reocr",
    "result_key",
    "run_reocr",
]
