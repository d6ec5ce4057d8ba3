"""Batch OCR pages: the start form with the project's past jobs, the progress page, its JSON
status, cancel, and each past job's summary.

GET /proofing/<slug>/batch-ocr shows the progress page whenever the project has a running
job (whoever started it, whenever the user comes back) and the start form otherwise.
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
    url_for,
)
from flask_login import current_user, login_required

from app.models import JobKind, Project
from app.permissions import is_project_editor
from app.services import batch_ocr, jobs
from app.services.batch_ocr import SELECTIONS, BatchOcrError
from app.services.jobs.history import JobFilter, duration_seconds, job_visible_to, list_jobs
from app.views.access import project_editor_or_403, project_or_404
from app.views.page_grid import page_grid

bp = Blueprint("batch_ocr", __name__, url_prefix="/proofing/<slug>/batch-ocr")
bp.add_app_template_global(page_grid)
bp.add_app_template_global(duration_seconds)


@bp.route("", methods=["GET"])
@login_required
def page(slug: str):
    project = project_or_404(slug)
    status = batch_ocr.job_status(project)
    may_edit = is_project_editor(current_user, project)
    if status.is_live:
        return render_template(
            "batch_ocr/progress.html", project=project, status=status, may_edit=may_edit
        )
    return _start_page(project, status if status.state != "none" else None, may_edit), 200


def _start_page(project: Project, last: jobs.JobStatus | None, may_edit: bool) -> str:
    history = list_jobs(
        current_user,
        JobFilter(project=project.slug, kind=JobKind.OCR),
        page=request.args.get("page", 1, type=int),
    )
    return render_template(
        "batch_ocr/start.html",
        project=project,
        may_edit=may_edit,
        last=last,
        history=history,
        engines=batch_ocr.engine_choices(),
        selections=SELECTIONS,
    )


@bp.route("", methods=["POST"])
@login_required
def start(slug: str):
    project = project_editor_or_403(slug)
    try:
        outcome = batch_ocr.start_batch_ocr(
            project,
            engine=request.form.get("engine", "tesseract"),
            language=request.form.get("language") or None,
            selection=request.form.get("pages", "unedited"),
            user=current_user,
        )
    except BatchOcrError as exc:
        flash(str(exc), "error")
        return _start_page(project, None, True), 400
    if not outcome.started:
        flash("A batch OCR job was already running for this project; here is its progress.", "info")
    return redirect(url_for("batch_ocr.page", slug=slug), code=303)


@bp.route("/status")
@login_required
def status(slug: str):
    response = jsonify(batch_ocr.job_status(project_or_404(slug)).to_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/cancel", methods=["POST"])
@login_required
def cancel(slug: str):
    project = project_editor_or_403(slug)
    try:
        job = batch_ocr.cancel_batch_ocr(project)
        flash(f"Batch OCR cancelled; {job.done} pages already done keep their text.", "info")
    except BatchOcrError as exc:
        flash(str(exc), "error")
    return redirect(url_for("batch_ocr.page", slug=slug), code=303)


@bp.route("/jobs/<task_id>")
@login_required
def job(slug: str, task_id: str):
    """One job's summary: its counts and every page's outcome, with retry for failed pages."""
    project = project_or_404(slug)
    found = job_visible_to(current_user, task_id)
    if found is None or found.project_id != project.id or found.kind != JobKind.OCR:
        abort(404, f"Project {slug!r} has no batch OCR job {task_id!r}.")
    status = jobs.status_of(found)
    if status.is_live:
        return redirect(url_for("batch_ocr.page", slug=slug))
    return render_template(
        "batch_ocr/job.html",
        project=project,
        job=found,
        status=status,
        may_edit=is_project_editor(current_user, project),
        is_latest=jobs.latest_job(project, JobKind.OCR) == found,
    )
