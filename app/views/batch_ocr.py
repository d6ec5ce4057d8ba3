"""Batch OCR pages: the start form, the progress page, its JSON status, cancel and retry.

GET /proofing/<slug>/batch-ocr shows the progress page whenever the project has a running
job (whoever started it, whenever the user comes back) and the start form otherwise.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app.engines import ENGINES
from app.permissions import is_project_editor
from app.services import batch_ocr
from app.services.batch_ocr import SELECTIONS, BatchOcrError
from app.views.access import project_editor_or_403, project_or_404
from app.views.page_grid import page_grid

bp = Blueprint("batch_ocr", __name__, url_prefix="/proofing/<slug>/batch-ocr")
bp.add_app_template_global(page_grid)


@bp.route("", methods=["GET"])
@login_required
def page(slug: str):
    project = project_or_404(slug)
    status = batch_ocr.job_status(project)
    may_edit = is_project_editor(current_user, project)
    if status["state"] in ("queued", "running"):
        return render_template(
            "batch_ocr/progress.html", project=project, status=status, may_edit=may_edit
        )
    return render_template(
        "batch_ocr/start.html",
        project=project,
        may_edit=may_edit,
        last=status if status["state"] != "none" else None,
        engines=_engine_choices(),
        selections=SELECTIONS,
    )


@bp.route("", methods=["POST"])
@login_required
def start(slug: str):
    project = project_editor_or_403(slug)
    selection = request.form.get("pages", "unedited")
    try:
        outcome = batch_ocr.start_batch_ocr(
            project,
            engine=request.form.get("engine", "tesseract"),
            language=request.form.get("language") or None,
            selection=selection,
            user=current_user,
        )
    except BatchOcrError as exc:
        flash(str(exc), "error")
        return (
            render_template(
                "batch_ocr/start.html",
                project=project,
                may_edit=True,
                last=None,
                engines=_engine_choices(),
                selections=SELECTIONS,
            ),
            400,
        )
    if not outcome.started:
        flash("A batch OCR job was already running for this project; here is its progress.", "info")
    return redirect(url_for("batch_ocr.page", slug=slug), code=303)


@bp.route("/status")
@login_required
def status(slug: str):
    response = jsonify(batch_ocr.job_status(project_or_404(slug)))
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


def _engine_choices() -> list[dict]:
    return [
        {
            "name": engine.name,
            "label": engine.label,
            "unavailable": engine.unavailable_reason(current_app.config),
        }
        for engine in ENGINES.values()
    ]
