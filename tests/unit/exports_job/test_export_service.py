"""Exports as jobs (app/services/exports/, on app/services/jobs/), with fakeredis and the
recorded tasks run in this process: start, join, the kept file, the status filter, page and
assembly idempotency, a failed page, resume."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import task_names
from app.exports import FORMATS
from app.exports.text import PlainText
from app.extensions import db
from app.job_tracking import job_key
from app.models import Export, Job, JobKind, JobPage, JobState
from app.services import exports, jobs
from app.services.exports import ExportBusy, ExportError, files


def start(project, format_name="txt", min_status=None):
    return exports.start_export(project, format_name=format_name, min_status=min_status, user=None)


def job_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Job).filter_by(kind="export"))


def exported_file(app, job_id: str) -> Path:
    export = db.session.scalar(select(Export).filter_by(job_id=job_id))
    assert export is not None, "no Export row"
    return Path(app.config["DATA_DIR"]) / export.path


def test_start_records_the_job_under_export_task_and_sends_the_first_pages(app, book, enqueued):
    """The record holds task_id, format, started_at and project_slug with a 24 h TTL; the
    first window of page tasks is sent."""
    project = book(pages=5)
    outcome = start(project)
    assert outcome.started and outcome.kept is None
    redis = app.extensions["redis"]
    record = json.loads(redis.get(job_key(project.slug, JobKind.EXPORT)))
    assert record["task_id"] == outcome.job_id
    assert record["format"] == "txt"
    assert record["project_slug"] == project.slug
    assert record["started_at"].endswith("+00:00")
    assert 0 < redis.ttl(job_key(project.slug, JobKind.EXPORT)) <= 24 * 3600
    sent = [kwargs for name, kwargs in enqueued if name == task_names.EXPORT_PAGE]
    assert sent and all(kwargs["job_id"] == outcome.job_id for kwargs in sent)
    job = db.session.get(Job, outcome.job_id)
    assert (job.kind, job.total, job.selection) == ("export", 5, "all")
    assert job.options == {"format": "txt", "min_status": None}


def test_export_runs_to_its_file_and_the_record_is_deleted(app, book, run_tasks):
    """Every page's latest text in order, the Export row, the record gone, the parts removed."""
    project = book(pages=4)
    outcome = start(project)
    run_tasks()
    job = db.session.get(Job, outcome.job_id)
    assert (job.state, job.done, job.failed) == (JobState.SUCCEEDED, 4, 0)
    assert app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None
    path = exported_file(app, outcome.job_id)
    assert path.name == f"{project.slug}.txt"
    expected = "".join(f"=== page {n} ===\ntext of page {n}\n\n" for n in range(1, 5))
    assert path.read_text() == expected
    assert not files.parts_dir(outcome.job_id).exists()
    status = exports.job_status(project)
    assert (status.state, status.percent, status.format) == ("succeeded", 100, "txt")


def test_zip_export_holds_a_file_per_page(app, book, run_tasks):
    project = book(slug="zipped", pages=3)
    outcome = start(project, "txt-zip")
    run_tasks()
    path = exported_file(app, outcome.job_id)
    assert path.name == "zipped-txt-zip.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names == [f"zipped/zipped-{n:04d}.txt" for n in (1, 2, 3)]
        assert archive.read(names[1]).decode() == "text of page 2\n"


def test_a_second_request_for_the_running_export_joins_it(app, book, enqueued):
    project = book()
    first = start(project)
    second = start(project)
    assert (second.job_id, second.started) == (first.job_id, False)
    assert job_count() == 1


def test_a_request_for_another_export_while_one_runs_names_the_running_one(app, book, enqueued):
    """One export per project at a time: the refusal says which export runs."""
    project = book()
    first = start(project, "txt")
    with pytest.raises(ExportBusy) as refused:
        start(project, "txt-zip")
    assert refused.value.job_id == first.job_id
    message = str(refused.value)
    assert FORMATS["txt"].label in message and "every page" in message
    assert "\n" not in message
    with pytest.raises(ExportBusy):
        start(project, "txt", "proofread-once")
    assert job_count() == 1


def test_an_unchanged_book_is_served_from_the_kept_file(app, book, run_tasks, enqueued):
    project = book()
    first = start(project)
    run_tasks()
    again = start(project)
    assert again.kept is not None and not again.started
    assert again.kept.job_id == first.job_id
    assert job_count() == 1 and not enqueued


def test_a_changed_page_makes_a_new_export(app, book, run_tasks, save_page):
    project = book()
    first = start(project)
    run_tasks()
    save_page(project, 2, text="corrected page two")
    second = start(project)
    assert second.started and second.job_id != first.job_id
    run_tasks()
    assert "corrected page two" in exported_file(app, second.job_id).read_text()
    # The first file was made from the old text: kept, but no longer up to date.
    kept = {item.export.job_id: item.current for item in exports.kept_exports(project)}
    assert kept == {first.job_id: False, second.job_id: True}


def test_a_status_change_alone_makes_a_new_export(app, book, run_tasks, save_page):
    project = book()
    start(project)
    run_tasks()
    save_page(project, 1, status="proofread-once")
    assert start(project).started


def test_min_status_keeps_pages_at_or_above_it_and_leaves_out_not_relevant(app, book, run_tasks):
    statuses = ["needs-work", "proofread-once", "proofread-twice", "not-relevant", "proofread-once"]
    project = book(pages=5, statuses=statuses)
    outcome = start(project, "txt", "proofread-once")
    run_tasks()
    job = db.session.get(Job, outcome.job_id)
    assert (job.total, job.selection) == (3, "proofread-once")
    text = exported_file(app, outcome.job_id).read_text()
    assert [line for line in text.splitlines() if line.startswith("===")] == [
        "=== page 2 ===",
        "=== page 3 ===",
        "=== page 5 ===",
    ]
    twice = start(project, "txt", "proofread-twice")
    run_tasks()
    assert "=== page 3 ===" in exported_file(app, twice.job_id).read_text()
    assert db.session.get(Job, twice.job_id).total == 1


def test_every_page_export_includes_every_status(app, book, run_tasks):
    project = book(pages=2, statuses=["not-relevant", "needs-work"])
    outcome = start(project)
    run_tasks()
    assert exported_file(app, outcome.job_id).read_text().count("=== page") == 2


def test_bad_choices_and_nothing_to_export_are_refused_with_a_reason(app, book, enqueued):
    project = book(pages=2)
    with pytest.raises(ExportError, match="Unknown export format 'docx'"):
        start(project, "docx")
    with pytest.raises(ExportError, match="Unknown page status 'perfect'"):
        start(project, "txt", "perfect")
    with pytest.raises(ExportError, match="No page is at or above proofread twice"):
        start(project, "txt", "proofread-twice")
    assert job_count() == 0 and not enqueued
    assert app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None


def test_a_redelivered_page_task_changes_nothing(app, book, enqueued):
    project = book(pages=2)
    outcome = start(project)
    exports.run_page(outcome.job_id, 0, worker="test:1")
    part = files.part_path(outcome.job_id, project.pages[0].id)
    made = part.stat().st_mtime_ns
    again = exports.run_page(outcome.job_id, 0, worker="test:1")
    assert again.outcome == "done"
    assert part.stat().st_mtime_ns == made
    progress = jobs.tracker(JobKind.EXPORT).progress_of(
        jobs.tracker(JobKind.EXPORT).current(project.slug)
    )
    assert progress.counts["done"] == 1


def test_the_assembly_is_idempotent(app, book, enqueued, run_tasks):
    """A second assembly finds the Export row and only ends the job; one row, one file."""
    project = book(pages=2)
    outcome = start(project)
    run_tasks()
    path = exported_file(app, outcome.job_id)
    made = path.stat().st_mtime_ns
    assert exports.assemble_export(outcome.job_id, worker="test:2").job_id == outcome.job_id
    assert db.session.scalar(select(func.count()).select_from(Export)) == 1
    assert path.stat().st_mtime_ns == made
    assert db.session.get(Job, outcome.job_id).state == JobState.SUCCEEDED


def test_an_assembly_held_by_another_worker_is_left_to_it(app, book, enqueued):
    project = book(pages=1)
    outcome = start(project)
    enqueued.clear()
    exports.run_page(outcome.job_id, 0, worker="test:1")
    tracker = jobs.tracker(JobKind.EXPORT)
    assert tracker.claim_assembly(outcome.job_id, "other:9", 30)
    assert exports.assemble_export(outcome.job_id, worker="test:1") is None
    assert db.session.scalar(select(func.count()).select_from(Export)) == 0
    tracker.release_assembly(outcome.job_id, "other:9")
    assert exports.assemble_export(outcome.job_id, worker="test:1") is not None


def test_a_page_that_cannot_be_rendered_fails_the_export_and_resume_finishes_it(
    app, book, enqueued, run_tasks, monkeypatch
):
    """The export fails at once with the page and the reason; after the cause is gone, resume
    renders only the pages without a part and makes the whole file."""
    project = book(pages=4)
    rendered: list[int] = []
    real = PlainText.render_part

    def render(self, page, meta):
        rendered.append(page.number)
        if page.number == 2:
            raise ValueError("a broken page")
        return real(self, page, meta)

    monkeypatch.setattr(PlainText, "render_part", render)
    outcome = start(project)
    run_tasks()
    job = db.session.get(Job, outcome.job_id)
    assert job.state == JobState.FAILED
    assert job.message.startswith("Page 2 could not be exported:")
    assert "a broken page" in job.message
    assert app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None
    assert db.session.scalar(select(Export).filter_by(job_id=job.id)) is None
    assert exports.resumable_job(project) == job

    monkeypatch.setattr(PlainText, "render_part", real)
    done_before = set(
        db.session.scalars(select(JobPage.page_id).filter_by(job_id=job.id, state="done"))
    )
    resumed = exports.resume_export(project, user=None)
    run_tasks()
    resume_job = db.session.get(Job, resumed.job_id)
    assert resume_job.state == JobState.SUCCEEDED
    assert resume_job.options["export_of"] == job.id
    resumed_pages = set(db.session.scalars(select(JobPage.page_id).filter_by(job_id=resume_job.id)))
    assert resumed_pages.isdisjoint(done_before)
    assert len(resumed_pages) + len(done_before) == 4
    text = exported_file(app, resumed.job_id).read_text()
    assert [line for line in text.splitlines() if line.startswith("===")] == [
        f"=== page {n} ===" for n in range(1, 5)
    ]
    # Served again while nothing changes.
    assert start(project).kept.job_id == resumed.job_id


def test_an_interrupted_export_resumes_with_only_its_missing_parts(app, book, enqueued, run_tasks):
    project = book(pages=5)
    outcome = start(project)
    enqueued.clear()
    for position in (0, 1, 3):
        exports.run_page(outcome.job_id, position, worker="test:1")
    enqueued.clear()
    job = db.session.get(Job, outcome.job_id)
    jobs.lifecycle.interrupt_job(job, "no page started, finished or beat (workers lost?)")
    assert db.session.get(Job, outcome.job_id).state == JobState.INTERRUPTED
    assert app.extensions["redis"].get(job_key(project.slug, JobKind.EXPORT)) is None

    resumed = exports.resume_export(project, user=None)
    assert db.session.get(Job, resumed.job_id).total == 2
    run_tasks()
    text = exported_file(app, resumed.job_id).read_text()
    for n in range(1, 6):
        assert text.count(f"=== page {n} ===\ntext of page {n}\n") == 1


def test_resume_with_every_part_on_disk_only_assembles(app, book, enqueued, run_tasks):
    project = book(pages=2)
    outcome = start(project)
    enqueued.clear()
    for position in (0, 1):
        exports.run_page(outcome.job_id, position, worker="test:1")
    enqueued.clear()  # the assembly's message is lost with its worker
    jobs.lifecycle.interrupt_job(db.session.get(Job, outcome.job_id), "lost")
    resumed = exports.resume_export(project, user=None)
    assert db.session.get(Job, resumed.job_id).total == 0
    assert run_tasks() == 1
    assert exported_file(app, resumed.job_id).read_text().count("=== page") == 2


def test_nothing_to_resume_is_refused(app, book, enqueued, run_tasks):
    project = book(pages=1)
    with pytest.raises(ExportError, match="no interrupted, cancelled or failed export"):
        exports.resume_export(project, user=None)
    start(project)
    run_tasks()
    with pytest.raises(ExportError, match="no interrupted"):
        exports.resume_export(project, user=None)


def test_an_export_waiting_for_its_assembly_stays_live_and_is_sent_once(app, book, enqueued):
    """Every page rendered, the assembly not run yet: status reads show the export live at
    100 % (never interrupted for want of a record) and do not send the assembly again."""
    project = book(pages=2)
    outcome = start(project)
    enqueued.clear()
    for position in (0, 1):
        exports.run_page(outcome.job_id, position, worker="test:1")
    assembles = [kwargs for name, kwargs in enqueued if name == task_names.ASSEMBLE_EXPORT]
    assert assembles == [{"job_id": outcome.job_id}]
    for _poll in range(3):
        db.session.expire_all()
        status = exports.job_status(project)
        assert status.is_live and status.percent == 100, status
    assert jobs.watch_jobs() == 0
    assert [name for name, _ in enqueued].count(task_names.ASSEMBLE_EXPORT) == 1
    assert db.session.get(Job, outcome.job_id).state == JobState.RUNNING
    exports.assemble_export(outcome.job_id, worker="test:1")
    assert exports.job_status(project).state == "succeeded"


def test_a_kept_file_is_served_even_while_another_export_runs(app, book, run_tasks, enqueued):
    project = book(pages=2)
    made = start(project, "txt")
    run_tasks()
    running = start(project, "txt-zip")
    assert running.started
    kept = start(project, "txt")
    assert kept.kept is not None and kept.job_id == made.job_id
    with pytest.raises(ExportBusy):
        start(project, "txt", "proofread-once")
