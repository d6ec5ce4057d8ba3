"""Workers killed mid-job (SIGKILL): one pool process, then the whole worker.

Each test has its own redis-server and worker (`own_stack`). A victim is chosen while the job
records it running a page, so the kill always lands in the middle of a page.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.extensions import db
from app.job_tracking import job_key
from app.models import Job, JobState
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


@pytest.mark.timeout(600)
def test_whole_worker_killed_mid_job_is_recovered_by_heartbeats(own_stack, clean_run, tmp_path):
    """SIGKILL of the whole worker (process group) mid-job, then a new worker, with the default
    page time limit and stall timeout: the dead worker's pages stop beating, the watchdog gives
    them back within a few heartbeats (not the broker's visibility timeout of 180 s), and the
    job succeeds, not interrupted, with one revision per page."""
    stack = own_stack(OCR_PAGE_TIME_LIMIT="120", OCR_STALL_TIMEOUT="300")
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
        status = wait_for_job_end(project, 240)
        recovery = time.monotonic() - killed
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
        total = job_seconds(outcome.job_id)
    assert held >= 1
    log = stack.workers[-1].log_path.read_text(errors="replace")
    assert "pages of lost workers or sends will be sent again" in log, stack.workers[-1].log_tail()
    record_result(
        "2. whole worker SIGKILL",
        "worker main process and its pool (process group), mid-job; new worker started at once; "
        "default limits (page 120 s, stall 300 s)",
        f"{held} page{'' if held == 1 else 's'} mid-OCR in the dead worker stopped beating; the "
        "new worker's watchdog gave them back (heartbeat 4 x 3 s stale) and they were redone; "
        f"job succeeded, not interrupted, 1 revision per page; job took {total:.0f} s vs "
        f"{clean_run:.0f} s clean",
        f"kill to job end {recovery:.0f} s (new worker ready in {restarted:.1f} s)",
    )


@pytest.mark.timeout(600)
def test_a_job_whose_only_worker_died_is_interrupted_then_resumed(own_stack, clean_run, tmp_path):
    """With no worker left at all, nothing can run the job: after OCR_STALL_TIMEOUT (30 s)
    without a page starting, finishing or beating, it is marked interrupted and its key
    cleared; with a worker back, resume runs only the pages without a result."""
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
        stack.start_worker("worker2")
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
        assert batch_ocr.watch_jobs() == 0
    record_result(
        "2b. the only worker SIGKILLed, none started",
        "as 2, with no worker left; OCR_STALL_TIMEOUT=30",
        f"job marked interrupted {reported:.0f} s after the kill (nothing started, finished or "
        f"beat for 30 s) and its key cleared; a worker started and resume ran the "
        f"{len(BOOK_PAGES) - len(done_by_first)} pages without a result; 1 revision per page",
        f"kill to resumed job end {recovery:.0f} s (resume clicked at once)",
    )


@pytest.mark.timeout(600)
def test_one_of_two_worker_hosts_killed_mid_job_leaves_every_page_done_once(
    own_stack, clean_run, tmp_path
):
    """Two workers with distinct node names, as two hosts would run them, share a job; one is
    SIGKILLed mid-page. The other finishes the job, the dead one's pages included, and every
    page is done exactly once."""
    stack = own_stack(OCR_PAGE_TIME_LIMIT="120", OCR_STALL_TIMEOUT="300")
    first = stack.start_worker("host-a", concurrency=1)
    second = stack.start_worker("host-b", concurrency=1)
    assert first.name != second.name
    with stack.app.app_context():
        project = make_ready_project("two-hosts", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES))
        outcome = start_job(project)
        wait_for(lambda: process_mid_page(first, project), 120, "host-a mid-page", 0.05)
        first.kill()
        killed = time.monotonic()
        status = wait_for_job_end(project, 240)
        recovery = time.monotonic() - killed
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
    assert second.process.poll() is None
    record_result(
        "2c. one of two worker hosts SIGKILLed",
        "two workers with distinct node names (one process each), one killed mid-page",
        "the survivor took the dead host's page once its heartbeat went stale and finished the "
        "job; 1 revision per page",
        f"kill to job end {recovery:.0f} s; no operator action",
    )
