"""The export tasks' branches (worker/tasks.py `export_page`, `assemble_export`), run through
Celery with `apply()`: a time limit and a bug in a format each fail the export with a reason,
and never leave a page running."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from app.exports.text import PlainText
from app.extensions import db
from app.models import Job, JobPage, JobState
from app.services import exports
from worker import tasks


@pytest.fixture
def export_job(app, book, enqueued):
    project = book(slug="task-export", pages=2)
    outcome = exports.start_export(project, format_name="txt", min_status=None, user=None)
    enqueued.clear()
    return outcome.job_id


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SoftTimeLimitExceeded(), "rendering took longer than the"),
        (KeyError("boxes"), "internal error: KeyError"),
    ],
)
def test_a_page_task_that_breaks_off_fails_the_export(export_job, monkeypatch, error, reason):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(exports.page, "run_item", broken)
    tasks.export_page.apply(kwargs={"job_id": export_job, "position": 0})
    db.session.expire_all()
    job_page = db.session.get(JobPage, (export_job, 0))
    assert job_page.state == "failed" and reason in job_page.reason
    job = db.session.get(Job, export_job)
    assert job.state == JobState.FAILED
    assert job.message.startswith("Page 1 could not be exported:") and reason in job.message


def test_the_tasks_make_the_file(export_job, enqueued, app):
    for position in (0, 1):
        tasks.export_page.apply(kwargs={"job_id": export_job, "position": position})
    tasks.assemble_export.apply(kwargs={"job_id": export_job})
    db.session.expire_all()
    assert db.session.get(Job, export_job).state == JobState.SUCCEEDED
    assert exports.export_of(export_job) is not None


def test_a_format_that_raises_on_assembly_fails_the_export(export_job, monkeypatch):
    def broken(self, parts, meta, out):
        raise RuntimeError("no space left")

    monkeypatch.setattr(PlainText, "assemble", broken)
    for position in (0, 1):
        tasks.export_page.apply(kwargs={"job_id": export_job, "position": position})
    tasks.assemble_export.apply(kwargs={"job_id": export_job})
    db.session.expire_all()
    job = db.session.get(Job, export_job)
    assert job.state == JobState.FAILED
    assert "could not be assembled: RuntimeError: no space left" in job.message
    assert exports.resumable_job(job.project) == job
