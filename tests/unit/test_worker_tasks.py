"""The page task's branches (worker/tasks.py `ocr_page`), run through Celery with `apply()`:
a transient engine error retried with backoff and then given up, a time limit, and a bug in
the engine, each ending the page with a reason and never leaving it running."""

from __future__ import annotations

import logging
import os
import re

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from app.engines import ENGINES, OcrResult, TransientOcrError
from app.extensions import db
from app.models import JobPage, Project
from app.services import batch_ocr
from tests.support import add_ready_project
from worker import tasks


class ScriptedEngine:
    """An engine whose successive calls answer from a script: text, or an error to raise."""

    name = "scripted"
    label = "Scripted engine"

    def __init__(self) -> None:
        self.script: list[object] = []
        self.calls = 0

    def unavailable_reason(self, config):
        return None

    def languages(self, config):
        return None

    def recognize(self, image_path, language, config, timeout):
        answer = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(answer, BaseException):
            raise answer
        return OcrResult(text=str(answer), boxes=[])


@pytest.fixture
def engine(monkeypatch):
    scripted = ScriptedEngine()
    monkeypatch.setitem(ENGINES, scripted.name, scripted)
    return scripted


@pytest.fixture
def job(app, enqueued, engine):
    add_ready_project("task-branches", 1)
    project = db.session.scalar(select(Project).filter_by(slug="task-branches"))
    outcome = batch_ocr.start_batch_ocr(
        project, engine="scripted", language="eng", selection="all", user=None
    )
    return outcome.job_id


def run_task(job_id: str):
    """The task as a worker runs it, retries included (apply() runs them at once)."""
    return tasks.ocr_page.apply(kwargs={"job_id": job_id, "position": 0})


def page_outcome(job_id: str) -> tuple[str, str | None]:
    db.session.expire_all()
    row = db.session.get(JobPage, (job_id, 0))
    return row.state, row.reason


def test_a_transient_error_is_retried_with_backoff_until_it_passes(job, engine, caplog):
    """Two rate limits, then text: the page is done on the third attempt, each retry waiting
    a random time within the doubling bound (full jitter)."""
    engine.script = [TransientOcrError("rate limited"), TransientOcrError("rate limited"), "text"]
    with caplog.at_level(logging.WARNING, logger="worker.tasks"):
        run_task(job)

    assert engine.calls == 3
    assert page_outcome(job) == ("done", None)
    waits = [float(w) for w in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert len(waits) == 2
    for attempt, wait in enumerate(waits):
        assert 0 <= wait <= 2 ** (attempt + 1)


def test_a_transient_error_on_the_final_attempt_fails_the_page(job, engine):
    """Still failing after every retry: the page fails, saying it gave up, and the job ends."""
    engine.script = [TransientOcrError("Google Cloud Vision is busy")]
    run_task(job)

    assert engine.calls == tasks.MAX_TRANSIENT_RETRIES + 1
    state, reason = page_outcome(job)
    assert state == "failed"
    assert reason == "Google Cloud Vision is busy (gave up after retries)"
    assert batch_ocr.job_status(db.session.get(JobPage, (job, 0)).job.project).state == "failed"


def test_the_soft_time_limit_fails_the_page_with_the_limit(app, job, engine):
    """Celery's soft time limit interrupting the engine fails the page naming the limit (that
    Celery does deliver it to a real worker: tests/integration/test_page_time_limit.py)."""
    engine.script = [SoftTimeLimitExceeded()]
    run_task(job)

    limit = app.config["OCR_PAGE_TIME_LIMIT"]
    assert page_outcome(job) == ("failed", f"OCR took longer than the {limit} s page time limit")


def test_an_unexpected_error_fails_the_page_with_its_type_and_never_leaves_it_running(job, engine):
    """A bug in an engine fails its page with the error named; the page is not left running
    for the watchdog to hand out again and again."""
    engine.script = [ZeroDivisionError("division by zero")]
    run_task(job)

    state, reason = page_outcome(job)
    assert (state, reason) == ("failed", "internal error: ZeroDivisionError: division by zero")
    project = db.session.get(JobPage, (job, 0)).job.project
    status = batch_ocr.job_status(project)
    assert (status.state, status.running) == ("failed", 0)


def test_a_message_for_a_finished_page_does_nothing(job, engine):
    """A redelivered message of a page already done runs no OCR and changes nothing."""
    engine.script = ["text"]
    run_task(job)
    run_task(job)

    assert engine.calls == 1
    assert page_outcome(job) == ("done", None)


def test_a_page_held_by_a_dead_process_of_the_same_worker_is_taken_over_at_once(app, job, engine):
    """A pool process killed mid-page leaves a fresh heartbeat behind; the page handed back
    by Celery is run by a sibling process at once, not after the heartbeat goes stale. A page
    held by a live process, or by another node, is not."""
    tracker = app.extensions["job_trackers"]["ocr"]
    project = db.session.get(JobPage, (job, 0)).job.project
    record = tracker.current(project.slug)
    engine.script = ["text"]
    tracker.mark_running(record, 0, f"celery@here:{os.getpid()}")  # alive: this very process
    assert batch_ocr.run_page(job, 0, worker="celery@here:1").outcome == "not run"

    dead = 2**22 + 12345  # above Linux's largest pid_max: no such process
    tracker.mark_running(record, 0, f"celery@here:{dead}", stale_after=0)
    assert batch_ocr.run_page(job, 0, worker="celery@elsewhere:1").outcome == "not run"
    assert batch_ocr.run_page(job, 0, worker="celery@here:1").outcome == "done"
