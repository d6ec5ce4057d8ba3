"""Who may do what: the checks views share."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import select

from app.extensions import db
from app.models import Project


def editor_required(view: Any) -> Any:
    """Editors and admins only (creating projects, running batch OCR)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.can_edit_projects:
            abort(403, "Only editors and admins can do this.")
        return view(*args, **kwargs)

    return wrapped


def project_or_404(slug: str) -> Project:
    """The project a signed-in user may see. Every signed-in user sees every project."""
    project = db.session.scalar(select(Project).filter_by(slug=slug))
    if project is None:
        abort(404, f"There is no project {slug!r}.")
    return project
