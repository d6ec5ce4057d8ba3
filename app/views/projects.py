"""Projects: the list, creating one from an upload, and the project page with its pages."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.models import Project, ProjectStatus
from app.permissions import visible_projects
from app.services import batch_ocr
from app.services.projects import ProjectError, create_project, pages_split
from app.views.access import editor_required, project_or_404

bp = Blueprint("projects", __name__)


@bp.route("/")
def home():
    return redirect(url_for("projects.index"))


@bp.route("/proofing/")
@login_required
def index():
    projects = db.session.scalars(visible_projects(current_user)).all()
    return render_template("projects/index.html", projects=projects)


@bp.route("/proofing/create-project", methods=["GET", "POST"])
@editor_required
def create():
    if request.method == "GET":
        return render_template("projects/create.html", form={})
    form = request.form
    upload = request.files.get("source")
    if upload is None or not upload.filename:
        flash("Choose a PDF (or a PNG, JPEG or TIFF scan) to upload.", "error")
        return render_template("projects/create.html", form=form), 400
    try:
        project = create_project(
            slug=form.get("slug", "").strip(),
            title=form.get("title", ""),
            language=form.get("language", "eng").strip(),
            source=upload.stream,
            filename=upload.filename,
            created_by=current_user,
            private=form.get("private") == "on",
        )
    except ProjectError as exc:
        flash(str(exc), "error")
        return render_template("projects/create.html", form=form), 400
    flash(f"Project {project.slug!r} created; its pages are being prepared.", "info")
    return redirect(url_for("projects.show", slug=project.slug))


@bp.route("/proofing/<slug>/")
@login_required
def show(slug: str):
    project = project_or_404(slug)
    return render_template(
        "projects/show.html",
        project=project,
        split=split_state(project),
        last_job=batch_ocr.latest_job_summary(project),
    )


@bp.route("/proofing/<slug>/split-status")
@login_required
def split_status(slug: str):
    return jsonify(split_state(project_or_404(slug)))


def split_state(project: Project) -> dict:
    done = pages_split(project)
    total = project.source_page_count or 0
    return {
        "status": project.status,
        "message": project.status_message,
        "pages_done": done,
        "pages_total": total,
        "percent": 100
        if project.status == ProjectStatus.READY
        else (done * 100 // total if total else 0),
    }
