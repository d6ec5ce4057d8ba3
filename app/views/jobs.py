"""/jobs: every job of every project, for admins, running ones first with live progress."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from app.engines import ENGINES
from app.models import JobState, Role
from app.services.jobs.history import FilterError, JobFilter, list_jobs, with_live_counts
from app.services.notifications import job_path

bp = Blueprint("jobs", __name__)


@bp.route("/jobs")
@login_required
def index():
    if current_user.role != Role.ADMIN:
        abort(403, "Only admins see the jobs of every project.")
    args = request.args
    where = JobFilter(
        project=args.get("project") or None,
        state=args.get("state") or None,
        engine=args.get("engine") or None,
        started_by=args.get("started_by") or None,
    )
    try:
        found = list_jobs(
            current_user, where, page=args.get("page", 1, type=int), running_first=True
        )
    except FilterError as exc:
        abort(400, str(exc))
    return render_template(
        "jobs/index.html",
        found=found,
        rows=[(job, with_live_counts(job)) for job in found.jobs],
        where=where,
        states=[state.value for state in JobState],
        engines=list(ENGINES),
        # Where each job is shown, from the one place that knows (its kind's own page).
        job_path=job_path,
    )
