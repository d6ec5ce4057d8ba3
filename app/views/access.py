"""Who may do what: the checks views share. The rules themselves are app/permissions.py."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import select

from app.extensions import db
from app.models import Page, Project
from app.permissions import can_see, is_project_editor


def editor_required(view: Any) -> Any:
    """Editors and admins only (creating projects)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.can_edit_projects:
            abort(403, "Only editors and admins can do this.")
        return view(*args, **kwargs)

    return wrapped


def project_or_404(slug: str) -> Project:
    """The project, if the signed-in user may see it. A private project the user is not a
    member of is a 404, like a missing one: its name is not told to those outside it."""
    project = db.session.scalar(select(Project).filter_by(slug=slug))
    if project is None or not can_see(current_user, project):
        abort(404, f"There is no project {slug!r}.")
    return project


def project_editor_or_403(slug: str) -> Project:
    """The project, if the signed-in user is an editor of it (batch OCR actions)."""
    project = project_or_404(slug)
    if not is_project_editor(current_user, project):
        abort(403, "Only the project's editors and admins can do this.")
    return project


def page_or_404(slug: str, number: int) -> Page:
    """Page `number` of the project, seen as the project is (a private project's page is a
    404 to those outside it)."""
    project = project_or_404(slug)
    page = db.session.scalar(select(Page).filter_by(project_id=project.id, number=number))
    if page is None:
        abort(404, f"Project {slug!r} has no page {number}.")
    return page
