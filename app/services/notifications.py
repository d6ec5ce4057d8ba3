"""Telling people in the app that a job they wait on has ended.

When a job ends, the person who started it and the project's editors who asked to be told
(ProjectMember.notify) each get one Notification, with the state, the counts and a link. The
badge in the navigation counts the unread ones; the notifications page and GET
/api/notifications list them.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import (
    Job,
    JobKind,
    MemberRole,
    Notification,
    Project,
    ProjectMember,
    User,
    utcnow,
)
from app.permissions import can_see, is_project_editor

KIND_LABELS = {JobKind.OCR: "Batch OCR", JobKind.EXPORT: "Export", JobKind.REPLACE: "Replace"}
#: Notifications a list shows at most, newest first.
PAGE_SIZE = 50


class NotificationError(ValueError):
    """A user-facing reason a notification setting cannot be changed."""


def job_path(job: Job) -> str:
    """The page of the app that shows `job` (a path, for links in and out of the app)."""
    # Built from the URL map, not by hand, so that it follows the routes; no request needed,
    # since the worker calls this too.
    adapter = current_app.url_map.bind("")
    if job.kind == JobKind.OCR:
        return adapter.build("batch_ocr.job", {"slug": job.project.slug, "task_id": job.id})
    if job.kind == JobKind.REPLACE:
        # The project's last search and replace: its progress, then its summary.
        return adapter.build("search.progress", {"slug": job.project.slug})
    if job.kind == JobKind.EXPORT:
        return adapter.build("exports.page", {"slug": job.project.slug})
    return adapter.build("projects.show", {"slug": job.project.slug})


def describe(job: Job) -> tuple[str, str]:
    """(title, body) of the notification of `job`'s end."""
    label = KIND_LABELS.get(job.kind, job.kind.capitalize())
    state = job.state.replace("_", " ")
    title = f"{label} of {job.project.title}: {state}"
    body = f"{job.done} of {job.total} pages done, {job.failed} failed, {job.skipped} skipped."
    if job.message:
        body += f" {job.message}"
    return title[:256], body


def recipients(job: Job) -> list[User]:
    """Who hears of the end of `job`: who started it, if they may still see the project, and
    the project's editors who opted in. Each once."""
    project = job.project
    people: dict[int, User] = {}
    starter = job.started_by
    if starter is not None and not starter.is_bot and can_see(starter, project):
        people[starter.id] = starter
    for member in project.members:
        if member.notify and is_project_editor(member.user, project):
            people.setdefault(member.user_id, member.user)
    return list(people.values())


def notify_job_ended(job: Job) -> int:
    """Write the notifications of `job`'s end; returns how many were new. Idempotent: a user
    already told of this job is not told again."""
    told = set(db.session.scalars(select(Notification.user_id).filter_by(job_id=job.id)))
    title, body = describe(job)
    link = job_path(job)
    new = [
        Notification(user_id=user.id, job_id=job.id, title=title, body=body, link=link)
        for user in recipients(job)
        if user.id not in told
    ]
    if new:
        db.session.add_all(new)
        db.session.commit()
    return len(new)


def unread_count(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count(Notification.id)).filter_by(user_id=user.id, read_at=None)
        )
        or 0
    )


def latest(user: User, limit: int = PAGE_SIZE) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .filter_by(user_id=user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def mark_read(user: User, notifications: list[Notification]) -> int:
    """Mark these notifications of `user` read; returns how many were unread."""
    ids = [n.id for n in notifications if n.read_at is None and n.user_id == user.id]
    if not ids:
        return 0
    db.session.execute(
        update(Notification).where(Notification.id.in_(ids)).values(read_at=utcnow())
    )
    db.session.commit()
    return len(ids)


def as_json(notification: Notification) -> dict:
    job = notification.job
    return {
        "id": notification.id,
        "title": notification.title,
        "body": notification.body,
        "link": notification.link,
        "created_at": _iso(notification.created_at),
        "read": notification.read_at is not None,
        "job": None
        if job is None
        else {
            "task_id": job.id,
            "kind": job.kind,
            "state": job.state,
            "project": job.project.slug,
            "total": job.total,
            "done": job.done,
            "failed": job.failed,
            "skipped": job.skipped,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def follows(user: User, project: Project) -> bool:
    """Whether `user` asked to be told of every job of `project`."""
    member = db.session.get(ProjectMember, (project.id, user.id))
    return bool(member and member.notify)


def set_follow(project: Project, user: User, on: bool) -> ProjectMember | None:
    """Opt `user`, an editor of `project`, in or out of the notifications of its jobs.

    The choice lives on the user's membership; an editor who is not yet a member (an admin,
    or any editor of a public project) becomes an editor member, which the project page says.
    """
    if not is_project_editor(user, project):
        raise NotificationError("Only the project's editors can follow its jobs.")
    member = db.session.get(ProjectMember, (project.id, user.id))
    if member is None:
        if not on:
            return None
        member = ProjectMember(project_id=project.id, user_id=user.id, role=MemberRole.EDITOR)
        db.session.add(member)
    member.notify = on
    db.session.commit()
    return member
