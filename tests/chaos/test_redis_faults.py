"""Redis restarted mid-job, with persistence (AOF) and without.

Each test has its own redis-server (`own_stack`), restarted on the same port and directory
while the worker OCRs a page, so the web app, the worker and the broker all lose their
connections at once.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.job_tracking import job_key
from app.models import JobPage, JobState
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


def restart_redis(stack) -> float:
    """Stops redis-server (SIGTERM, as an operator or systemd would) and starts it again on the
    same port and directory; returns how long it did not answer."""
    started = time.monotonic()
    stack.redis_server.stop()
    stack.redis_server.start()
    return time.monotonic() - started


def test_redis_restart_with_aof_mid_job_lets_the_job_complete(own_stack, clean_run, tmp_path):
    """With appendonly on, Redis restarted while pages run loses nothing: the job succeeds with
    exactly one revision per page and its key is gone at the end."""
    stack = own_stack(appendonly=True)
    worker = stack.start_worker()
    redis = stack.app.extensions["redis"]
    with stack.app.app_context():
        project = make_ready_project("redis-aof", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES))
        slug = project.slug
        outcome = start_job(project)
        wait_for(lambda: process_mid_page(worker, project), 120, "a page mid-OCR", 0.05)
        down = restart_redis(stack)
        restarted = time.monotonic()
        status = wait_for_job_end(project, 240)
        recovery = time.monotonic() - restarted
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
        total = job_seconds(outcome.job_id)
    assert redis.get(job_key(slug)) is None
    assert worker.process.poll() is None, "the worker exited"
    record_result(
        "3a. Redis restart, AOF on",
        f"redis-server stopped (SIGTERM) and started on the same port mid-page; down {down:.1f} s",
        "web app, worker and broker reconnected by themselves; job record, page states and "
        f"queued pages survived; job succeeded, 1 revision per page; job took {total:.1f} s "
        f"vs {clean_run:.1f} s clean",
        f"restart to job end {recovery:.1f} s; no operator action",
    )


def page_ids(job_id: str, state: str | None = None) -> set[int]:
    """Ids of the pages of a job (positions are renumbered in each job), optionally by state."""
    db.session.expire_all()
    query = select(JobPage.page_id).filter_by(job_id=job_id)
    if state:
        query = query.filter_by(state=state)
    return set(db.session.scalars(query))


def test_redis_restart_without_persistence_interrupts_and_resume_runs_the_rest(
    own_stack, clean_run, tmp_path
):
    """Without persistence, Redis restarted mid-job loses the record and the queued pages: the
    job is reported interrupted at the next status read and its key is gone; resume (clicked at
    once) runs none of the pages the first job had finished, and the book ends fully OCRed."""
    stack = own_stack(appendonly=False)
    worker = stack.start_worker()
    redis = stack.app.extensions["redis"]
    with stack.app.app_context():
        project = make_ready_project(
            "redis-volatile", multipage_pdf(tmp_path / "b.pdf", BOOK_PAGES)
        )
        first = start_job(project)
        wait_for(lambda: process_mid_page(worker, project), 120, "a page mid-OCR", 0.05)
        down = restart_redis(stack)
        restarted = time.monotonic()
        status = wait_for(
            lambda: (s := live_counts(project))["state"] == JobState.INTERRUPTED and s,
            60,
            "the job to be reported interrupted",
            0.2,
        )
        reported = time.monotonic() - restarted
        assert redis.get(job_key(project.slug)) is None
        assert batch_ocr.watch_jobs() == 0  # nothing left live to reap

        finished_before_resume = page_ids(first.job_id, "done")
        resumed = start_job(project, selection="resume")
        resumed_pages = page_ids(resumed.job_id)
        end = wait_for_job_end(project, 240)
        recovery = time.monotonic() - restarted
        by_first = revisions_per_page(project.id, first.job_id)
        by_resume = revisions_per_page(project.id, resumed.job_id)
    assert status["done"] < len(BOOK_PAGES), status
    assert resumed_pages.isdisjoint(finished_before_resume)
    assert end["state"] == "succeeded", end
    for number in by_first:
        # Every page recognised, and by one job only: a page the old job's straggling task
        # finished after resume began is counted done by the resumed job, not redone.
        assert by_first[number] + by_resume[number] == 1, (number, by_first, by_resume)
    both = sorted(n for n in by_first if by_first[n] and by_resume[n])
    record_result(
        "3b. Redis restart, no persistence",
        f"redis-server stopped and started empty on the same port mid-page; down {down:.1f} s",
        f"job reported interrupted {reported:.1f} s after the restart (record gone), key "
        f"absent; resume covered {len(resumed_pages)} of {len(BOOK_PAGES)} pages and ended "
        f"'{end['state']}'; pages recognised by both jobs (the old job's task was still "
        f"mid-page when resume was clicked): {both or 'none'}",
        f"restart to resumed job end {recovery:.1f} s (resume clicked at once)",
    )
