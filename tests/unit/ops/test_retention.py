"""The clean-up (app/services/retention.py, `flask cleanup`): old staged uploads, expired
export files and the per-page rows of old jobs go; everything else stays; a dry run lists the
same and changes nothing."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Export, Job, JobKind, JobPage, JobState, Project, utcnow
from app.services import retention
from tests.support import add_ready_project, make_job


@pytest.fixture
def aged(app):
    """One of each thing past its retention, and one of each still within it."""
    data = Path(app.config["DATA_DIR"])
    projects_dir = data / "projects"
    old_staging, new_staging = projects_dir / ".incoming-old", projects_dir / ".incoming-new"
    for directory in (old_staging, new_staging):
        directory.mkdir(parents=True)
        (directory / "source.pdf").write_bytes(b"%PDF-1.4 partial")
    day_and_more = time.time() - retention.STALE_STAGING_SECONDS - 60
    os.utime(old_staging, (day_and_more, day_and_more))

    add_ready_project("kept-book", 3)
    project = db.session.query(Project).filter_by(slug="kept-book").one()
    days = app.config["JOB_PAGE_RETENTION_DAYS"]
    old_job = make_job(project, ended_ago=timedelta(days=days, hours=1), job_id="old-job")
    recent_job = make_job(project, ended_ago=timedelta(days=days - 1), job_id="recent-job")
    running = make_job(
        project,
        state=JobState.RUNNING,
        ended_ago=None,
        outcomes=["queued"] * 3,
        job_id="running-job",
    )
    exports = {}
    for name, age in (("old", app.config["EXPORT_RETENTION_HOURS"] + 1), ("new", 1)):
        job = make_job(project, kind=JobKind.EXPORT, outcomes=[], job_id=f"export-{name}")
        path = data / "exports" / f"{name}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("the book's text")
        db.session.add(
            Export(
                project_id=project.id,
                job_id=job.id,
                format="txt",
                fingerprint=name,
                path=str(path.relative_to(data)),
                size=15,
                created_at=utcnow() - timedelta(hours=age),
            )
        )
        exports[name] = path
    db.session.commit()
    return {
        "old_staging": old_staging,
        "new_staging": new_staging,
        "old_job": old_job.id,
        "recent_job": recent_job.id,
        "running_job": running.id,
        "exports": exports,
    }


def job_page_counts() -> dict[str, int]:
    return {
        job_id: db.session.query(JobPage).filter_by(job_id=job_id).count()
        for job_id in ("old-job", "recent-job", "running-job")
    }


def test_a_dry_run_lists_what_would_go_and_changes_nothing(app, aged):
    before = (job_page_counts(), db.session.query(Export).count(), db.session.query(Job).count())
    removed = retention.clean_up(dry_run=True)
    assert [r.kind for r in removed] == ["staged upload", "export", "job pages"]
    assert ".incoming-old" in removed[0].what
    assert "exports/old.txt" in removed[1].what
    assert removed[2].what.startswith("3 of job old-job (ended ")
    assert aged["old_staging"].exists() and aged["exports"]["old"].exists()
    db.session.expire_all()
    after = (job_page_counts(), db.session.query(Export).count(), db.session.query(Job).count())
    assert after == before


def test_the_clean_up_removes_only_what_is_past_its_retention_and_logs_each(app, aged, caplog):
    with caplog.at_level(logging.INFO, logger="app.services.retention"):
        removed = retention.clean_up()
    assert len(removed) == 3
    assert not aged["old_staging"].exists()
    assert aged["new_staging"].exists()
    assert not aged["exports"]["old"].exists()
    assert aged["exports"]["new"].exists()
    db.session.expire_all()
    assert [e.fingerprint for e in db.session.query(Export)] == ["new"]
    assert job_page_counts() == {"old-job": 0, "recent-job": 3, "running-job": 3}
    # The summary rows stay: the old job, and the export job whose file went.
    old = db.session.get(Job, "old-job")
    assert (old.state, old.total, old.done) == ("succeeded", 3, 3)
    assert db.session.get(Job, "export-old") is not None
    logged = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("removed ") for m in logged) == 3
    assert retention.clean_up() == []  # nothing left to remove


def test_flask_cleanup_prints_the_dry_run_and_the_real_one(app, aged):
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["cleanup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove staged upload: .incoming-old" in dry.output
    assert "would remove job pages: 3 of job old-job" in dry.output
    assert dry.output.strip().endswith("3 things would be removed")
    assert aged["old_staging"].exists()
    real = runner.invoke(args=["cleanup"])
    assert "removed export: exports/old.txt" in real.output
    assert real.output.strip().endswith("3 things removed")
    assert not aged["old_staging"].exists()


def test_an_export_row_pointing_outside_the_data_directory_never_removes_that_file(app, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("not the app's")
    add_ready_project("escape-book", 1)
    project = db.session.query(Project).filter_by(slug="escape-book").one()
    job = make_job(project, kind=JobKind.EXPORT, outcomes=[], job_id="escape")
    db.session.add(
        Export(
            project_id=project.id,
            job_id=job.id,
            format="txt",
            fingerprint="x",
            path="../precious.txt",
            created_at=utcnow() - timedelta(days=30),
        )
    )
    db.session.commit()
    assert len(retention.remove_expired_exports()) == 1
    assert outside.exists()
    assert db.session.query(Export).count() == 0
