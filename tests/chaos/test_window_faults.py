"""Faults in sending a job's pages a window at a time (app/services/jobs/window.py), on a real
redis-server and real workers: a worker that dies between finishing a page and sending the
next, a send that is repeated, and a cancel that races a send. Each must end with every page
done exactly once.
"""

from __future__ import annotations

import pytest

from app import queue, task_names
from app.extensions import db
from app.models import JobKind, Project
from app.services import batch_ocr, jobs, projects
from app.services.jobs import items
from tests.chaos import (
    BOOK_PAGES,
    every_page_has_one_revision,
    live_counts,
    record_result,
    revisions_per_page,
    start_job,
)
from tests.support import multipage_pdf, wait_for, wait_for_job_end

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def split_here(slug: str, tmp_path) -> Project:
    """A ready project split in this process: these tests start their worker later."""
    source = multipage_pdf(tmp_path / f"{slug}.pdf", BOOK_PAGES)
    with source.open("rb") as fh:
        project = projects.create_project(
            slug=slug, title=slug, language="eng", source=fh, filename=source.name, created_by=None
        )
    projects.render_pages(project.id, 0, len(BOOK_PAGES))
    db.session.refresh(project)
    assert project.status == "ready", project.status_message
    return project


class Died(BaseException):
    """What a SIGKILL looks like from inside the process, for the code after it: nothing."""


def test_a_worker_dying_after_its_pages_finish_and_before_it_sends_more(
    own_stack, tmp_path, monkeypatch
):
    """Both pages in the broker finish, and each of their tasks dies before sending the next
    pages: the job has nothing in the broker. A worker that starts finds it and sends the rest
    (its watchdog tops up the window); every page is done once."""
    stack = own_stack(JOB_WINDOW="2")
    with stack.app.app_context():
        project = split_here("died-before-send", tmp_path)
        outcome = start_job(project)

        def die(*_args, **_kwargs):
            raise Died

        monkeypatch.setattr(items, "top_up", die)
        for position in (0, 1):  # the two pages sent, run here by the worker that dies
            with pytest.raises(Died):
                batch_ocr.run_page(outcome.job_id, position, worker="doomed:1")
        monkeypatch.undo()
        stranded = live_counts(project)
        assert (stranded["done"], stranded["running"]) == (2, 0), stranded
        # Their messages are gone too (a redelivered one would also send more): only the
        # watchdog can find the job now.
        stack.app.extensions["redis"].delete(task_names.OCR_QUEUE)

        stack.start_worker()
        status = wait_for_job_end(project, 180)
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
    record_result(
        "8. died between a page and the next send",
        "the two tasks of a job's window finished their pages and died before sending more",
        "nothing of the job was left in the broker; the next worker's watchdog sent the rest; "
        "job succeeded, 1 revision per page",
        "the watchdog (every 3 s while a worker lives)",
    )


def test_pages_sent_twice_are_done_once(own_stack, tmp_path):
    """Every page's message is sent twice over (a redelivered or repeated send): each page is
    recognised once, and the extra messages do nothing."""
    stack = own_stack()
    with stack.app.app_context():
        project = split_here("sent-twice", tmp_path)
        outcome = start_job(project)
        for _ in range(2):
            for position in range(len(BOOK_PAGES)):
                queue.send_page(
                    task_names.OCR_PAGE,
                    queue=task_names.OCR_QUEUE,
                    job_id=outcome.job_id,
                    position=position,
                )
        worker = stack.start_worker()
        status = wait_for_job_end(project, 180)
        assert status["state"] == "succeeded", status
        every_page_has_one_revision(project, outcome.job_id)
    recognised = worker.log_path.read_text(errors="replace").count(f"job {outcome.job_id} page")
    assert recognised == len(BOOK_PAGES), f"{recognised} recognitions for {len(BOOK_PAGES)} pages"
    record_result(
        "9. every page sent twice more",
        f"{2 * len(BOOK_PAGES)} extra messages for a {len(BOOK_PAGES)}-page job",
        f"{recognised} pages recognised, once each; the duplicates found their page running "
        "elsewhere or finished and did nothing; 1 revision per page",
        "none needed",
    )


def test_a_cancel_racing_a_send_runs_none_of_the_cancelled_pages(own_stack, tmp_path):
    """Pages are taken to be sent, the job is cancelled, then the messages go out (the sender
    was between the two when the cancel came): the worker runs none of them, and the job
    stays cancelled with the pages done before it."""
    stack = own_stack(JOB_WINDOW="2")
    with stack.app.app_context():
        project = split_here("cancel-races", tmp_path)
        outcome = start_job(project)
        batch_ocr.run_page(outcome.job_id, 0, worker="here:1")  # one page done before
        record = jobs.tracker(JobKind.OCR).current(project.slug)
        taken = jobs.tracker(JobKind.OCR).take(record, 4)
        job = batch_ocr.cancel_batch_ocr(project)
        for position in [1, *taken]:  # the window's pages, and the ones being sent
            queue.send_page(
                task_names.OCR_PAGE,
                queue=task_names.OCR_QUEUE,
                job_id=outcome.job_id,
                position=position,
            )
        stack.start_worker()
        redis = stack.app.extensions["redis"]
        wait_for(lambda: redis.llen(task_names.OCR_QUEUE) == 0, 60, "the messages taken")
        wait_for(lambda: not redis.hlen("unacked"), 60, "the messages done with")
        db.session.expire_all()
        per_page = revisions_per_page(project.id, outcome.job_id)
        assert job.state == "cancelled"
        assert live_counts(project)["state"] == "cancelled"
    assert per_page == {n: int(n == 1) for n in range(1, len(BOOK_PAGES) + 1)}, per_page
    record_result(
        "10. cancel racing a send",
        f"pages {taken} taken for sending, the job cancelled, then their messages sent",
        "the worker ran none of the cancelled pages; the page done before the cancel kept its "
        "one revision; the job stayed cancelled",
        "none needed",
    )
