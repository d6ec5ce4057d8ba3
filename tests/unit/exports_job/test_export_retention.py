"""What the clean-up (app/services/retention.py) does to exports: expired files go with their
directory; parts kept for a resume go once their export ended EXPORT_RETENTION_HOURS ago;
a live or recently ended export keeps its parts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.exports.text import PlainText
from app.extensions import db
from app.models import Export, Job, utcnow
from app.services import exports, retention
from app.services.exports import files
from app.services.jobs.lifecycle import interrupt_job


def start(project):
    return exports.start_export(project, format_name="txt", min_status=None, user=None)


def age(model, row_id, hours: int, column: str) -> None:
    db.session.execute(
        update(model).where(model.id == row_id).values({column: utcnow() - timedelta(hours=hours)})
    )
    db.session.commit()


def test_an_expired_file_goes_with_its_directory(app, book, run_tasks):
    project = book(pages=2)
    outcome = start(project)
    run_tasks()
    export = db.session.query(Export).one()
    age(Export, export.id, app.config["EXPORT_RETENTION_HOURS"] + 1, "created_at")
    removed = retention.clean_up()
    assert any(r.kind == "export" for r in removed)
    assert not files.export_dir(outcome.job_id).exists()


def test_parts_of_a_failed_export_stay_for_a_resume_then_go(app, book, run_tasks, monkeypatch):
    project = book(pages=3)
    real = PlainText.render_part

    def fail_third(self, page, meta):
        if page.number == 3:
            raise ValueError("broken")
        return real(self, page, meta)

    monkeypatch.setattr(PlainText, "render_part", fail_third)
    outcome = start(project)
    run_tasks()
    assert db.session.get(Job, outcome.job_id).state == "failed"
    parts = files.parts_dir(outcome.job_id)
    assert len(list(parts.glob("*.part"))) == 2

    assert not [r for r in retention.clean_up() if r.kind == "export parts"]
    assert parts.is_dir()

    age(Job, outcome.job_id, app.config["EXPORT_RETENTION_HOURS"] + 1, "finished_at")
    dry = retention.clean_up(dry_run=True)
    assert [str(r) for r in dry if r.kind == "export parts"] == [
        f"export parts: exports/{outcome.job_id}"
    ]
    assert parts.is_dir()
    retention.clean_up()
    assert not files.export_dir(outcome.job_id).exists()


def test_a_running_resume_keeps_the_parts_of_the_old_export(app, book, enqueued):
    project = book(pages=2)
    outcome = start(project)
    enqueued.clear()
    exports.run_page(outcome.job_id, 0, worker="test:1")
    interrupt_job(db.session.get(Job, outcome.job_id), "lost")
    age(Job, outcome.job_id, app.config["EXPORT_RETENTION_HOURS"] + 1, "finished_at")
    exports.resume_export(project, user=None)
    retention.clean_up()
    assert files.part_path(outcome.job_id, project.pages[0].id).is_file()
