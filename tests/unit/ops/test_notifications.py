"""Notifications of a job's end (app/services/notifications.py): who gets one, the badge, the
page that lists and marks them read, GET /api/notifications, and following a project."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import Job, JobState, MemberRole, Notification, Project, ProjectMember, User
from app.services import job_events
from app.services.api_tokens import issue_token
from tests.support import csrf_token, make_job
from tests.unit.ops import client_of, ready_project


def user(name: str) -> User:
    return db.session.query(User).filter_by(username=name).one()


def project_named(slug: str) -> Project:
    return db.session.query(Project).filter_by(slug=slug).one()


def end_a_job(web, slug: str, started_by: str | None, **kwargs) -> str:
    with web.app_context():
        job = make_job(
            project_named(slug), started_by=user(started_by) if started_by else None, **kwargs
        )
        job_events.job_ended(job)
        return job.id


def badge(html: str) -> int | None:
    match = re.search(r'id="unread-count">(\d+)<', html)
    return int(match.group(1)) if match else None


def test_the_starter_and_the_editors_who_follow_are_told_once(web, users, enqueued):
    ready_project(web, "told-book")
    with web.app_context():
        project = project_named("told-book")
        db.session.add_all(
            [
                ProjectMember(
                    project_id=project.id,
                    user_id=users["ravi"],
                    notify=True,
                    role=MemberRole.EDITOR,
                ),
                # A proofreader cannot follow a project's jobs, whatever the row says.
                ProjectMember(project_id=project.id, user_id=users["pat"], notify=True),
                ProjectMember(project_id=project.id, user_id=users["ada"], notify=False),
            ]
        )
        db.session.commit()
    job_id = end_a_job(
        web,
        "told-book",
        "edna",
        state=JobState.PARTIALLY_FAILED,
        outcomes=["done", "done", "failed"],
    )
    with web.app_context():
        job_events.job_ended(db.session.get(Job, job_id))  # called twice: still told once
        told = {n.user_id: n for n in db.session.query(Notification).all()}
        assert set(told) == {users["edna"], users["ravi"]}
        note = told[users["edna"]]
        assert note.title == "Batch OCR of told-book: partially failed"
        assert note.body == "2 of 3 pages done, 1 failed, 0 skipped."
        assert note.link == f"/proofing/told-book/batch-ocr/jobs/{note.job_id}"
        assert note.read_at is None


def test_a_job_started_from_the_command_line_tells_only_followers(web, users, enqueued):
    ready_project(web, "cli-book")
    end_a_job(web, "cli-book", None)
    with web.app_context():
        assert db.session.query(Notification).count() == 0


def test_the_badge_counts_unread_and_the_page_lists_them_and_marks_them_read(web, users, enqueued):
    ready_project(web, "badge-book")
    end_a_job(web, "badge-book", "edna")
    end_a_job(web, "badge-book", "edna", state=JobState.FAILED, outcomes=["failed"] * 3)
    edna = client_of(web, "edna")
    assert badge(edna.get("/proofing/").get_data(as_text=True)) == 2
    assert badge(client_of(web, "ravi").get("/proofing/").get_data(as_text=True)) is None

    page = edna.get("/notifications").get_data(as_text=True)
    assert page.count('class="notification unread') == 2
    assert "Batch OCR of badge-book: failed" in page
    assert "0 of 3 pages done, 3 failed, 0 skipped." in page
    assert 'href="/proofing/badge-book/batch-ocr/jobs/' in page
    assert badge(page) is None  # read now
    again = edna.get("/notifications").get_data(as_text=True)
    assert "unread" not in again and "Batch OCR of badge-book: failed" in again


def test_the_api_lists_the_same_through_a_session_or_a_token(web, users, enqueued):
    ready_project(web, "api-book")
    job_id = end_a_job(web, "api-book", "edna")
    with web.app_context():
        token = issue_token(user("edna"))
    answer = web.test_client().get(
        "/api/notifications", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["unread"] == 1
    (item,) = body["notifications"]
    assert item["title"] == "Batch OCR of api-book: succeeded"
    assert item["read"] is False
    assert item["link"].startswith("/proofing/api-book/batch-ocr/jobs/")
    assert item["job"] == {
        "task_id": job_id,
        "kind": "ocr",
        "state": "succeeded",
        "project": "api-book",
        "total": 3,
        "done": 3,
        "failed": 0,
        "skipped": 0,
    }
    session = client_of(web, "edna").get("/api/notifications").get_json()
    assert session == body  # the API does not mark anything read
    assert web.test_client().get("/api/notifications").status_code == 401
    assert client_of(web, "ravi").get("/api/notifications").get_json() == {
        "unread": 0,
        "notifications": [],
    }


def test_an_editor_follows_a_project_from_its_page_and_a_proofreader_cannot(web, users, enqueued):
    ready_project(web, "follow-book")
    ravi = client_of(web, "ravi")
    page = ravi.get("/proofing/follow-book/").get_data(as_text=True)
    assert "Tell me when any job of this project ends" in page
    assert 'name="notify" checked' not in page
    token = csrf_token(ravi, "/proofing/follow-book/")
    answer = ravi.post("/proofing/follow-book/follow", data={"notify": "on", "csrf_token": token})
    assert answer.status_code == 303
    assert 'name="notify" checked' in ravi.get("/proofing/follow-book/").get_data(as_text=True)
    end_a_job(web, "follow-book", "edna")
    with web.app_context():
        member = db.session.get(ProjectMember, (project_named("follow-book").id, users["ravi"]))
        assert (member.role, member.notify) == ("editor", True)
        assert db.session.query(Notification).filter_by(user_id=users["ravi"]).count() == 1

    ravi.post("/proofing/follow-book/follow", data={"csrf_token": token})
    end_a_job(web, "follow-book", "edna")
    with web.app_context():
        assert db.session.query(Notification).filter_by(user_id=users["ravi"]).count() == 1

    pat = client_of(web, "pat")
    assert "Tell me when" not in pat.get("/proofing/follow-book/").get_data(as_text=True)
    refused = pat.post(
        "/proofing/follow-book/follow",
        data={"notify": "on", "csrf_token": csrf_token(pat, "/proofing/follow-book/")},
    )
    assert refused.status_code == 403
