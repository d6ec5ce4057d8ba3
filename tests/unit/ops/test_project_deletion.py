"""Deleting a project (app/services/project_deletion.py): refused while a job runs or while it
is split; otherwise every row, file and Redis key of it goes, and nothing of other projects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import job_tracking as ocr_tracking
from app.extensions import db
from app.job_tracking import JobRecord
from app.models import (
    Export,
    Job,
    JobKind,
    JobPage,
    JobState,
    Notification,
    Page,
    Project,
    ProjectMember,
    ProjectStatus,
    Revision,
    User,
    WebhookDelivery,
)
from app.services.project_deletion import ProjectDeletionError, delete_project, refusal
from tests.support import add_ready_project, csrf_token, make_job
from tests.unit.ops import client_of, ready_project

ROW_MODELS = (Page, Revision, Job, JobPage, ProjectMember, Export, Notification, WebhookDelivery)


def furnish(app, slug: str) -> dict:
    """A project with one of every row that hangs off it, files and Redis keys."""
    add_ready_project(slug, 2)
    project = db.session.query(Project).filter_by(slug=slug).one()
    someone = db.session.query(User).filter_by(username="someone").one_or_none()
    if someone is None:
        someone = User(username="someone", password_hash="x", role="editor")
        db.session.add(someone)
        db.session.flush()
    job = make_job(project, started_by=someone, job_id=f"{slug}-job")
    export_job = make_job(project, kind=JobKind.EXPORT, outcomes=[], job_id=f"{slug}-export")
    data = Path(app.config["DATA_DIR"])
    export_file = data / "exports" / f"{slug}.txt"
    export_file.parent.mkdir(exist_ok=True)
    export_file.write_text("text")
    page = project.pages[0]
    db.session.add_all(
        [
            Revision(page_id=page.id, author_id=someone.id, text="ocr", job_id=job.id),
            Revision(page_id=page.id, author_id=someone.id, text="by hand"),
            ProjectMember(project_id=project.id, user_id=someone.id, notify=True),
            Export(
                project_id=project.id,
                job_id=export_job.id,
                format="txt",
                fingerprint="f",
                path=str(export_file.relative_to(data)),
            ),
            Notification(user_id=someone.id, job_id=job.id, title="done"),
            WebhookDelivery(
                project_id=project.id,
                job_id=job.id,
                url="https://x.org/",
                event="job.ended",
                body="{}",
            ),
        ]
    )
    db.session.commit()
    redis = app.extensions["redis"]
    record = JobRecord(task_id=job.id, engine="tesseract", started_at="t", project_slug=slug)
    redis.set(ocr_tracking.job_key(slug), record.to_json())
    redis.set(ocr_tracking.pages_key(job.id), b"dd")
    redis.hset(ocr_tracking.progress_key(job.id), "done", 2)
    redis.hset(ocr_tracking.errors_key(job.id), "0", "x")
    return {"project_id": project.id, "job_id": job.id, "export_file": export_file}


def rows_of(project_id: int) -> dict[str, int]:
    jobs = select(Job.id).filter_by(project_id=project_id)
    pages = select(Page.id).filter_by(project_id=project_id)
    count = lambda q: db.session.scalar(q) or 0  # noqa: E731
    return {
        "pages": count(select(func.count()).select_from(Page).filter_by(project_id=project_id)),
        "revisions": count(select(func.count(Revision.id)).where(Revision.page_id.in_(pages))),
        "jobs": count(select(func.count()).select_from(Job).filter_by(project_id=project_id)),
        "job pages": count(
            select(func.count()).select_from(JobPage).where(JobPage.job_id.in_(jobs))
        ),
        "members": count(
            select(func.count()).select_from(ProjectMember).filter_by(project_id=project_id)
        ),
        "exports": count(select(func.count()).select_from(Export).filter_by(project_id=project_id)),
        "notifications": count(
            select(func.count()).select_from(Notification).where(Notification.job_id.in_(jobs))
        ),
        "deliveries": count(
            select(func.count()).select_from(WebhookDelivery).filter_by(project_id=project_id)
        ),
    }


def test_deleting_removes_every_row_file_and_key_of_the_project_and_nothing_else(app):
    doomed = furnish(app, "doomed")
    kept = furnish(app, "kept")
    kept_rows = rows_of(kept["project_id"])
    redis = app.extensions["redis"]

    report = delete_project(db.session.get(Project, doomed["project_id"]))

    assert report.rows == {
        "notifications": 1,
        "webhook deliveries": 1,
        "exports": 1,
        "revisions": 2,
        "job pages": 2,
        "jobs": 2,
        "pages": 2,
        "members": 1,
    }
    assert report.redis_keys == 4
    assert report.files >= 2  # the page image and the export file
    db.session.expire_all()
    assert db.session.get(Project, doomed["project_id"]) is None
    assert set(rows_of(doomed["project_id"]).values()) == {0}
    assert not (Path(app.config["DATA_DIR"]) / "projects" / "doomed").exists()
    assert not doomed["export_file"].exists()
    assert redis.exists(ocr_tracking.job_key("doomed")) == 0
    assert redis.exists(ocr_tracking.pages_key(doomed["job_id"])) == 0
    # The other project is whole.
    assert rows_of(kept["project_id"]) == kept_rows
    assert kept["export_file"].exists()
    assert redis.exists(ocr_tracking.job_key("kept"), ocr_tracking.pages_key(kept["job_id"])) == 2
    assert db.session.query(User).filter_by(username="someone").count() == 1


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
def test_deleting_is_refused_while_a_job_of_the_project_is_live(app, state):
    add_ready_project("busy", 2)
    project = db.session.query(Project).filter_by(slug="busy").one()
    make_job(project, state=state, ended_ago=None, outcomes=["queued", "queued"])
    with pytest.raises(ProjectDeletionError, match="Cancel it first") as caught:
        delete_project(project)
    assert "flask ocr cancel busy" in str(caught.value)
    db.session.expire_all()
    project = db.session.query(Project).filter_by(slug="busy").one()
    assert (project.status, project.status_message) == (ProjectStatus.READY, None)
    assert len(project.pages) == 2


def test_deleting_is_refused_while_a_job_is_starting_or_the_split_runs(app):
    add_ready_project("starting", 1)
    project = db.session.query(Project).filter_by(slug="starting").one()
    # The Redis record of a job whose row is not committed yet: a start under way.
    record = JobRecord(
        task_id="not-yet", engine="tesseract", started_at="t", project_slug="starting"
    )
    app.extensions["redis"].set(ocr_tracking.job_key("starting"), record.to_json())
    assert "is starting" in refusal(project)
    with pytest.raises(ProjectDeletionError, match="Cancel it first"):
        delete_project(project)

    project.status = ProjectStatus.SPLITTING
    db.session.commit()
    with pytest.raises(ProjectDeletionError, match="still being prepared"):
        delete_project(project)
    assert db.session.get(Project, project.id).status == ProjectStatus.SPLITTING


def test_editors_delete_from_the_page_after_typing_the_slug(web, users):
    ready_project(web, "by-page", 2)
    edna = client_of(web, "edna")
    assert "Delete this project" in edna.get("/proofing/by-page/").get_data(as_text=True)
    confirm = edna.get("/proofing/by-page/delete").get_data(as_text=True)
    assert "2 pages" in confirm and "Type <code>by-page</code> to confirm" in confirm
    token = csrf_token(edna, "/proofing/by-page/delete")
    wrong = edna.post("/proofing/by-page/delete", data={"confirm": "by-pag", "csrf_token": token})
    assert wrong.status_code == 303
    assert "Type by-page to confirm" in edna.get("/proofing/by-page/delete").get_data(as_text=True)
    done = edna.post("/proofing/by-page/delete", data={"confirm": "by-page", "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith("/proofing/")
    assert "by-page and everything in it were deleted" in edna.get("/proofing/").get_data(
        as_text=True
    )
    assert edna.get("/proofing/by-page/").status_code == 404


def test_a_proofreader_cannot_delete_and_a_running_job_is_refused_on_the_page(web, users):
    ready_project(web, "guarded", 2)
    pat = client_of(web, "pat")
    assert "Delete this project" not in pat.get("/proofing/guarded/").get_data(as_text=True)
    assert pat.get("/proofing/guarded/delete").status_code == 403
    with web.app_context():
        make_job(
            db.session.query(Project).filter_by(slug="guarded").one(),
            state=JobState.RUNNING,
            ended_ago=None,
            outcomes=["queued", "queued"],
        )
    ada = client_of(web, "ada")
    page = ada.get("/proofing/guarded/delete").get_data(as_text=True)
    assert "Cancel it first" in page and "disabled" in page
    token = csrf_token(ada, "/proofing/guarded/delete")
    ada.post("/proofing/guarded/delete", data={"confirm": "guarded", "csrf_token": token})
    assert ada.get("/proofing/guarded/").status_code == 200


def test_the_cli_deletes_with_yes_and_says_why_it_will_not(app):
    furnish(app, "cli-doomed")
    add_ready_project("cli-busy", 1)
    make_job(
        db.session.query(Project).filter_by(slug="cli-busy").one(),
        state=JobState.RUNNING,
        ended_ago=None,
        outcomes=["queued"],
    )
    runner = app.test_cli_runner()
    unconfirmed = runner.invoke(args=["projects", "delete", "cli-doomed"], input="n\n")
    assert unconfirmed.exit_code == 1
    assert db.session.query(Project).filter_by(slug="cli-doomed").count() == 1
    deleted = runner.invoke(args=["projects", "delete", "cli-doomed", "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.startswith(
        "project cli-doomed deleted: 2 pages, 2 revisions, 2 jobs, 2 job pages, 1 members, "
        "1 exports, 1 notifications, 1 webhook deliveries; 2 files, 4 Redis keys"
    )
    busy = runner.invoke(args=["projects", "delete", "cli-busy", "--yes"])
    assert busy.exit_code == 1
    assert "error: The batch OCR job of this project is running. Cancel it first" in busy.output
    missing = runner.invoke(args=["projects", "delete", "nothing-here", "--yes"])
    assert "error: no project 'nothing-here'" in missing.output


def test_a_redis_outage_during_the_check_leaves_the_project_as_it_was(app, monkeypatch):
    import redis as redis_lib

    from app.queue import QueueUnavailable

    add_ready_project("outage", 1)
    project = db.session.query(Project).filter_by(slug="outage").one()

    def down(*args, **kwargs):
        raise redis_lib.ConnectionError("down")

    monkeypatch.setattr(app.extensions["redis"], "get", down)
    with pytest.raises(QueueUnavailable):
        delete_project(project)
    db.session.expire_all()
    project = db.session.query(Project).filter_by(slug="outage").one()
    assert (project.status, project.status_message) == (ProjectStatus.READY, None)
    assert len(project.pages) == 1
