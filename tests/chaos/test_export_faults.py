"""Workers killed mid-export (SIGKILL of the whole worker and its pool).

Each test has its own redis-server and worker (`own_stack`) and a book of 800 pages, so that the
kill lands with most pages still to render. Whatever happens, the export either completes or is
reported interrupted, and resuming it completes it; the file then holds every page exactly once,
and the resume renders only the pages whose part was not on disk.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.job_tracking import job_key
from app.models import Export, Job, JobKind, JobState, Page, Project
from app.services import exports
from app.services.exports import files
from tests.chaos import record_result
from tests.support import add_ready_project, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

PAGES = 800


def book(slug: str) -> Project:
    project = add_ready_project(slug, PAGES)
    for page in project.pages:
        db.session.execute(
            update(Page).where(Page.id == page.id).values(text=f"words of page {page.number}")
        )
    db.session.commit()
    db.session.expire_all()
    return project


def status_of(project: Project):
    db.session.expire_all()
    return exports.job_status(project)


def wait_for_pages_done(project: Project, count: int) -> None:
    wait_for(lambda: status_of(project).done >= count, 120, f"{count} pages of the export")


def wait_for_end(project: Project, timeout: float = 300):
    def ended():
        status = status_of(project)
        return None if status.is_live else status

    return wait_for(ended, timeout, f"the export of {project.slug} to end", interval=0.5)


def parts_on_disk(export_id: str) -> int:
    return len(list(files.parts_dir(export_id).glob("*.part")))


def assert_every_page_once(app, job_id: str) -> None:
    export = db.session.scalar(select(Export).filter_by(job_id=job_id))
    assert export is not None, "the export has no file"
    text = (Path(app.config["DATA_DIR"]) / export.path).read_text()
    numbers = [int(n) for n in re.findall(r"^=== page (\d+) ===$", text, re.MULTILINE)]
    assert numbers == list(range(1, PAGES + 1))
    for n in (1, PAGES // 2, PAGES):
        assert f"=== page {n} ===\nwords of page {n}\n" in text


def test_worker_killed_mid_export_then_restarted_completes_it(own_stack):
    """SIGKILL of the worker mid-export, a new worker at once: the export completes on its
    own (the dead worker's pages are taken over when their heartbeats stop) or is reported
    interrupted, and then a resume completes it."""
    stack = own_stack()
    worker = stack.start_worker()
    with stack.app.app_context():
        project = book("export-kill-restart")
        outcome = exports.start_export(project, format_name="txt", min_status=None, user=None)
        wait_for_pages_done(project, 40)
        worker.kill()
        killed_at = time.monotonic()
        done_at_kill = status_of(project).done
        assert done_at_kill < PAGES, "the export ended before the kill"
        stack.start_worker("second")
        status = wait_for_end(project)
        final_job = outcome.job_id
        happened = f"export {status.state} after the kill at {done_at_kill}/{PAGES} pages"
        if status.state == JobState.INTERRUPTED:
            resumed = exports.resume_export(project, user=None)
            final_job = resumed.job_id
            status = wait_for_end(project)
            happened += (
                f"; resumed ({db.session.get(Job, final_job).total} pages) and {status.state}"
            )
        assert status.state == JobState.SUCCEEDED, status
        recovery = time.monotonic() - killed_at
        assert stack.app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None
        assert_every_page_once(stack.app, final_job)
        db.session.remove()
    record_result(
        "export: worker SIGKILL, restarted",
        f"whole worker at {done_at_kill}/{PAGES} pages of a txt export",
        happened,
        f"file complete {recovery:.1f} s after the kill",
    )


def test_export_interrupted_while_no_worker_lives_is_resumed_with_its_missing_parts(own_stack):
    """SIGKILL of the only worker mid-export and none started: the stall watchdog reports the
    export interrupted (OCR_STALL_TIMEOUT). A resume renders only the pages without a part on
    disk, and the file holds every page once."""
    stack = own_stack()
    worker = stack.start_worker()
    with stack.app.app_context():
        project = book("export-kill-resume")
        outcome = exports.start_export(project, format_name="txt", min_status=None, user=None)
        wait_for_pages_done(project, 40)
        worker.kill()
        killed_at = time.monotonic()
        status = wait_for_end(project, timeout=stack.app.config["OCR_STALL_TIMEOUT"] + 120)
        assert status.state == JobState.INTERRUPTED, status
        assert "no page started, finished or beat" in (status.message or "")
        assert stack.app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None
        on_disk = parts_on_disk(outcome.job_id)
        assert 0 < on_disk < PAGES

        stack.start_worker("second")
        resumed = exports.resume_export(project, user=None)
        assert resumed.started
        resume_total = db.session.get(Job, resumed.job_id).total
        assert resume_total == PAGES - on_disk
        status = wait_for_end(project)
        assert status.state == JobState.SUCCEEDED, status
        recovery = time.monotonic() - killed_at
        assert_every_page_once(stack.app, resumed.job_id)
        db.session.remove()
    record_result(
        "export: worker SIGKILL, none restarted",
        f"the only worker, {on_disk}/{PAGES} parts on disk",
        f"interrupted by the watchdog; resume rendered {resume_total} pages, succeeded",
        f"file complete {recovery:.1f} s after the kill",
    )
