"""Notifications: the unread badge on every page, the list, and GET /api/notifications."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.services import notifications

bp = Blueprint("notifications", __name__)


@bp.app_context_processor
def unread_badge() -> dict:
    """The number on the navigation's badge; one indexed count per page shown."""
    try:
        if not current_user.is_authenticated:
            return {"unread_notifications": 0}
        return {"unread_notifications": notifications.unread_count(current_user)}
    except SQLAlchemyError:
        # The error page of a database outage renders this too: it must not fail again.
        db.session.rollback()
        return {"unread_notifications": 0}


@bp.route("/notifications")
@login_required
def index():
    shown = notifications.latest(current_user)
    # The ones unread until now stay highlighted on this view; the next view shows them read.
    unread_ids = {n.id for n in shown if n.read_at is None}
    notifications.mark_read(current_user, shown)
    return render_template("notifications/index.html", shown=shown, unread_ids=unread_ids)


@bp.route("/api/notifications")
@login_required
def api_list():
    """The same list as the page, newest first, without marking anything read."""
    shown = notifications.latest(current_user)
    return jsonify(
        unread=notifications.unread_count(current_user),
        notifications=[notifications.as_json(n) for n in shown],
    )
