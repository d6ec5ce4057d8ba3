"""Workers killed mid-job (SIGKILL): one pool process, then the whole worker.

Each test has its own redis-server and worker (`own_stack`). A victim is chosen while it has a
`tesseract` child, so the kill always lands in the middle of a page.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.extensions import db
from app.models import Job, JobState
from app.ocr_tracking import job_key
from app.services import batch_ocr
from tests.chaos import (
    BOOK_PAGES,
    every_page_has_one_revision,
    job_seconds,
    live_counts,
    process_mid_page,
    record_result,
    revisions_per_page,
    start_job,
)
from tests.support import make_ready_project, multipage_pdf, wait_for, wait_for_job_end

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def test_pool_process_killed_mid_page_redoes_that_page_once(own_stack, clean_run, tmp_path):
    """SIGKILL of one worker pool process while it OCRs a page: the page goes back to the queue,
    the job succeeds, and every page has exactly one revision from the job."""
    stack = own_stack()
    worker = stack.start_worker()
    with stack.app.app_context():
        project = make_ready_project("kill-child", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES))
        outcome = start_job(project)
        victim = wait_for(
            lambda: process_mid_page(worker, project), 120, "a pool process mid-page", 0.05
        )
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        status = wait_for_job_end(project, 180)
        recovery = time.monotonic() - killed
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
        total = job_seconds(outcome.job_id)
    log = worker.log_path.read_text(errors="replace")
    # The killed process held a page: Celery saw it lost and requeued it.
    assert "WorkerLostError" in log, worker.log_tail()
    assert worker.process.poll() is None, "the worker itself exited"
    assert victim not in worker.child_pids()
    record_result(
        "1. pool process SIGKILL",
        "one of 2 worker pool processes, mid-page",
        "page requeued (acks_late + reject_on_worker_lost) and redone by a fresh process; "
        f"job succeeded, 1 revision per page; job took {total:.1f} s vs {clean_run:.1f} s clean",
        f"kill to job end {recovery:.1f} s; no operator action",
    )


def wait_for_end_tracking_stuck(project, timeout: float) -> tuple[dict, float | None]:
    """Polls until the job ends; returns its status and when only held pages were left."""
    only_held_since = None

    def ended():
        nonlocal only_held_since
        status = live_counts(project)
        if status["state"] not in ("queued", "running"):
            return status
        if only_held_since is None and status["queued"] == 0 and status["running"] > 0:
            only_held_since = time.monotonic()
        return None

    return wait_for(ended, timeout, f"the job of {project.slug} to end", 0.5), only_held_since


@pytest.mark.timeout(600)
def test_whole_worker_killed_mid_job_completes_after_a_new_worker_starts(
    own_stack, clean_run, tmp_path
):
    """SIGKILL of the whole worker (process group) mid-job, then a new worker: the pages the
    dead worker held come back after the broker's visibility timeout and the job succeeds with
    one revision per page. The stall timeout is set above the redelivery delay."""
    limit = 10
    visibility = limit + 60  # app/celery_app.py
    stack = own_stack(OCR_PAGE_TIME_LIMIT=str(limit), OCR_STALL_TIMEOUT="300")
    worker = stack.start_worker()
    with stack.app.app_context():
        project = make_ready_project("kill-worker", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES))
        outcome = start_job(project)
        wait_for(lambda: process_mid_page(worker, project), 120, "a page mid-OCR", 0.05)
        worker.kill()
        killed = time.monotonic()
        held = live_counts(project)["running"]
        stack.start_worker("worker2")
        restarted = time.monotonic() - killed
        status, only_held = wait_for_end_tracking_stuck(project, visibility + 200)
        recovery = time.monotonic() - killed
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
        total = job_seconds(outcome.job_id)
    assert held >= 1
    # Nothing gives the held pages back before the visibility timeout has passed.
    assert recovery >= visibility, recovery
    # Only_held stays None when the dead worker had also reserved a page it never started:
    # that page reads "queued" until it is redelivered too.
    drained = f" within {only_held - killed:.0f} s of the kill" if only_held else ""
    record_result(
        "2. whole worker SIGKILL",
        "worker main process and its pool (process group), mid-job; new worker started at once",
        f"{held} page{'' if held == 1 else 's'} mid-OCR in the dead worker (and any it had "
        f"reserved) stayed unfinished; the new worker did the rest of the queue{drained}; the "
        f"held pages came back from Celery's "
        f"`unacked` set after the visibility timeout ({visibility} s) and the next restore "
        f"sweep; job succeeded, 1 revision per page; job took {total:.0f} s vs "
        f"{clean_run:.0f} s clean",
        f"kill to job end {recovery:.0f} s (new worker ready in {restarted:.1f} s)",
    )


@pytest.mark.timeout(600)
def test_whole_worker_killed_with_a_short_stall_timeout_is_interrupted_then_resumed(
    own_stack, clean_run, tmp_path
):
    """With OCR_STALL_TIMEOUT (30 s) shorter than the redelivery delay, a job whose worker died
    is marked interrupted and its key cleared; resume runs only the pages without a result."""
    stack = own_stack(OCR_PAGE_TIME_LIMIT="10", OCR_STALL_TIMEOUT="30")
    redis = stack.app.extensions["redis"]
    worker = stack.start_worker()
    with stack.app.app_context():
        project = make_ready_project(
            "kill-worker-stall", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES)
        )
        first = start_job(project)
        wait_for(lambda: process_mid_page(worker, project), 120, "a page mid-OCR", 0.05)
        worker.kill()
        killed = time.monotonic()
        stack.start_worker("worker2")

        def interrupted():
            return live_counts(project)["state"] == JobState.INTERRUPTED

        wait_for(interrupted, 120, "the job to be marked interrupted", 0.5)
        reported = time.monotonic() - killed
        assert redis.get(job_key(project.slug)) is None
        done_by_first = {
            number
            for number, count in revisions_per_page(project.id, first.job_id).items()
            if count
        }
        resumed = start_job(project, selection="resume")
        status = wait_for_job_end(project, 120)
        assert status["state"] == "succeeded", status
        recovery = time.monotonic() - killed
        by_first = revisions_per_page(project.id, first.job_id)
        by_resume = revisions_per_page(project.id, resumed.job_id)
        assert {n for n, c in by_first.items() if c} == done_by_first, "old job wrote later"
        for number in by_first:
            assert by_first[number] + by_resume[number] == 1, (number, by_first, by_resume)
        db.session.expire_all()
        assert db.session.get(Job, first.job_id).state == JobState.INTERRUPTED
        assert batch_ocr.reap_stalled_jobs() == 0
    record_result(
        "2b. whole worker SIGKILL, OCR_STALL_TIMEOUT=30",
        "as 2, with the stall timeout below the redelivery delay",
        f"job marked interrupted {reported:.0f} s after the kill (no progress for 30 s) and "
        f"its key cleared; resume ran the {len(BOOK_PAGES) - len(done_by_first)} pages without "
        "a result; 1 revision per page",
        f"kill to resumed job end {recovery:.0f} s (resume clicked at once)",
    )
