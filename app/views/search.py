"""Search a project's text, and search and replace with a preview.

Searching is for everyone who sees the project; replacing is for its editors
(app/permissions.py). A replace over more than a few pages runs as a job whose progress page
follows it like batch OCR's does (templates/jobs/_progress.html, live-status.js).
"""

from __future__ import annotations

import json

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.permissions import is_project_editor
from app.services import replace, search
from app.services.jobs import JobError
from app.views.access import project_editor_or_403, project_or_404

bp = Blueprint("search", __name__, url_prefix="/proofing/<slug>")


@bp.route("/search")
@login_required
def results(slug: str):
    project = project_or_404(slug)
    query = request.args.get("q", "")
    found, error = None, None
    if query.strip():
        try:
            found = search.search_project(project, query, request.args.get("page", 1, type=int))
        except search.SearchError as exc:
            error = str(exc)
    return render_template(
        "search/results.html",
        project=project,
        query=query,
        found=found,
        error=error,
        may_replace=is_project_editor(current_user, project),
    ), (400 if error else 200)


def _replacement_from_form() -> replace.Replacement:
    form = request.form
    return replace.Replacement.parse(
        form.get("find", ""), form.get("replace", ""), form.get("regex") == "on"
    )


@bp.route("/replace/preview", methods=["POST"])
@login_required
def preview(slug: str):
    project = project_editor_or_403(slug)
    form = request.form
    try:
        replacement = _replacement_from_form()
        shown = replace.preview_replace(project, replacement)
    except replace.ReplaceError as exc:
        flash(str(exc), "error")
        return _form_again(project, form), 400
    return render_template(
        "search/preview.html",
        project=project,
        preview=shown,
        versions=json.dumps({str(k): v for k, v in shown.versions.items()}),
        sync_limit=replace.SYNC_LIMIT,
    )


def _form_again(project, form):
    return render_template(
        "search/results.html",
        project=project,
        query=form.get("find", ""),
        found=None,
        error=None,
        may_replace=True,
        form=form,
    )


@bp.route("/replace", methods=["POST"])
@login_required
def apply(slug: str):
    project = project_editor_or_403(slug)
    form = request.form
    try:
        replacement = _replacement_from_form()
        try:
            raw = json.loads(form.get("versions", ""))
        except ValueError:
            raw = None
        versions = replace.parse_versions(project, raw)
        outcome = replace.apply_replace(project, replacement, versions, current_user)
    except replace.ReplaceError as exc:
        flash(str(exc), "error")
        return _form_again(project, form), 400
    if outcome.job_id is not None:
        if not outcome.started:
            flash("A search and replace is already running for this project; here it is.", "info")
        return redirect(url_for("search.progress", slug=slug), code=303)
    return render_template(
        "search/applied.html", project=project, replacement=replacement, outcome=outcome
    )


@bp.route("/replace/progress")
@login_required
def progress(slug: str):
    project = project_or_404(slug)
    status = replace.replace_status(project)
    if status.state == "none":
        return redirect(url_for("search.results", slug=slug))
    return render_template(
        "search/progress.html",
        project=project,
        status=status,
        may_edit=is_project_editor(current_user, project),
    )


@bp.route("/replace/status")
@login_required
def status(slug: str):
    response = jsonify(replace.replace_status(project_or_404(slug)).to_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/replace/cancel", methods=["POST"])
@login_required
def cancel(slug: str):
    project = project_editor_or_403(slug)
    try:
        job = replace.cancel_replace(project)
        flash(f"Search and replace cancelled; {job.done} pages already changed keep it.", "info")
    except JobError as exc:
        flash(str(exc), "error")
    return redirect(url_for("search.progress", slug=slug), code=303)
