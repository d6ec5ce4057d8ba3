"""/admin: what the system is doing right now, for admins (app/services/dashboard.py)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from app.models import Role
from app.services import dashboard

bp = Blueprint("admin", __name__)

#: Seconds between reloads of the open dashboard (the workers' answers are cached for 5 s).
REFRESH_SECONDS = 10


@bp.route("/admin")
@login_required
def index():
    if current_user.role != Role.ADMIN:
        abort(403, "Only admins can see the dashboard.")
    return render_template(
        "admin/index.html", board=dashboard.build(), refresh_seconds=REFRESH_SECONDS
    )


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """A span as people say it: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


@bp.app_template_filter("hour_label")
def hour_label(unix_hour: int) -> str:
    return time.strftime("%H:00", time.gmtime(unix_hour))
