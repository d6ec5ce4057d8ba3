"""The export page of a project: the start form with the kept files, the progress of the
running export, its JSON status, resume, and the download of a kept file.

Everyone who can see the project may export it (app/permissions.py): an export changes
nothing, and a private project's files are as private as the project (404 to others).
GET /proofing/<slug>/export shows the progress whenever an export runs, whoever started it.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required

from app.models import Project
from app.services import exports, jobs
from app.services.exports import ExportBusy, ExportError
from app.views.access import project_or_404

bp = Blueprint("exports", __name__, url_prefix="/proofing/<slug>/export")


@bp.route("", methods=["GET"])
@login_required
def page(slug: str):
    project = project_or_404(slug)
    status = exports.job_status(project)
    if status.is_live:
        return render_template(
            "exports/progress.html",
            project=project,
            status=status,
            describe=exports.describe(status.format or "", exports.min_status_of(status.task_id)),
        )
    return _start_page(project, status if status.state != "none" else None)


def _start_page(project: Project, last: jobs.JobStatus | None, code: int = 200):
    made = exports.export_of(last.task_id) if last else None
    resumable = exports.resumable_job(project)
    return (
        render_template(
            "exports/start.html",
            project=project,
            last=last,
            last_export=made,
            resumable=resumable,
            kept=exports.kept_exports(project),
            formats=exports.format_choices(),
            min_statuses=exports.MIN_STATUSES,
            selection_label=exports.selection_label,
            chosen_format=request.form.get("format"),
            chosen_min_status=request.form.get("min_status"),
        ),
        code,
    )


@bp.route("", methods=["POST"])
@login_required
def start(slug: str):
    project = project_or_404(slug)
    try:
        outcome = exports.start_export(
            project,
            format_name=request.form.get("format", ""),
            min_status=request.form.get("min_status") or None,
            user=current_user,
        )
    except ExportBusy as exc:
        flash(str(exc), "info")
        return redirect(url_for("exports.page", slug=slug), code=303)
    except ExportError as exc:
        flash(str(exc), "error")
        return _start_page(project, None, 400)
    if outcome.kept is not None:
        flash(
            "The text has not changed since this export was last made: its kept file is "
            "ready below.",
            "info",
        )
        return redirect(
            url_for("exports.page", slug=slug, ready=outcome.kept.id) + "#kept", code=303
        )
    if not outcome.started:
        flash("This export was already running; here is its progress.", "info")
    return redirect(url_for("exports.page", slug=slug), code=303)


@bp.route("/resume", methods=["POST"])
@login_required
def resume(slug: str):
    project = project_or_404(slug)
    try:
        exports.resume_export(project, user=current_user)
    except ExportBusy as exc:
        flash(str(exc), "info")
    except ExportError as exc:
        flash(str(exc), "error")
    return redirect(url_for("exports.page", slug=slug), code=303)


@bp.route("/status")
@login_required
def status(slug: str):
    project = project_or_404(slug)
    answer = exports.job_status(project).to_dict()
    made = exports.export_of(answer.get("task_id"))
    answer["download_url"] = (
        url_for("exports.download", slug=slug, export_id=made.id) if made else None
    )
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/files/<int:export_id>")
@login_required
def download(slug: str, export_id: int):
    project = project_or_404(slug)
    found = exports.download(project, export_id)
    if found is None:
        abort(404, "That export file is not kept any more; export the project again.")
    return _send(found)


def _send(found: exports.Download):
    response = send_file(
        found.path,
        mimetype=found.content_type,
        as_attachment=True,
        download_name=found.name,
        max_age=0,
    )
    # As the format says it, whole: send_file would add a second charset to a text/ type.
    response.headers["Content-Type"] = found.content_type
    response.headers["Cache-Control"] = "private, no-store"
    return response
